"""Render the plugin template into a new package folder: ``render_plugin.py magnus-<concept>-<name> DEST``."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

TEMPLATE = Path(__file__).parent / "plugin"
NAME = re.compile(r"^magnus-[a-z0-9]+(-[a-z0-9]+)+$")


def render(distribution: str, destination: Path) -> Path:
    """Copy the template to ``destination`` with every placeholder replaced; return the folder."""
    if not NAME.match(distribution):
        raise SystemExit(f"'{distribution}' is not of the form magnus-<concept>-<name> (lower case)")
    plugin_name = distribution.split("-", 2)[2]
    replacements = {
        "__PLUGIN_DIST__": distribution,
        "__PLUGIN_IMPORT__": distribution.replace("-", "_"),
        "__PLUGIN_NAME__": plugin_name,
        "__PLUGIN_CLASS__": "".join(part.capitalize() for part in plugin_name.split("-")) + "Plugin",
    }
    if destination.exists():
        raise SystemExit(f"{destination} exists already")
    for source in sorted(TEMPLATE.rglob("*")):
        if "__pycache__" in source.parts or source.is_dir():
            continue
        relative = str(source.relative_to(TEMPLATE))
        text = source.read_text()
        for placeholder, value in replacements.items():
            relative = relative.replace(placeholder, value)
            text = text.replace(placeholder, value)
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        shutil.copymode(source, target)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("distribution", help="magnus-<concept>-<name>")
    parser.add_argument("destination", type=Path)
    arguments = parser.parse_args()
    print(render(arguments.distribution, arguments.destination))


if __name__ == "__main__":
    main()

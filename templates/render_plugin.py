"""Render the plugin template into a new package folder: ``render_plugin.py magnus-<kind>-<name> DEST``.

The kind of plugin is the distribution name's second part (``magnus-executor-slurm`` is an
executor named ``slurm``). Every kind shares ``plugin/common/`` (pyproject, version, CHANGELOG);
``plugin/<kind>/`` adds the plugin's module, its tests and its README.
"""

from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

TEMPLATE = Path(__file__).parent / "plugin"
NAME = re.compile(r"^magnus-[a-z0-9]+(-[a-z0-9]+)+$")


@dataclass(frozen=True)
class Kind:
    """A kind of plugin the template renders: its entry-point group and what its class is called."""

    group: str
    class_suffix: str
    description: str


KINDS: Dict[str, Kind] = {
    "executor": Kind("executor", "Executor", "every step in a python process of its own"),
    "secrets": Kind("secrets", "Secrets", "secrets read from a JSON file"),
}


def replacements(distribution: str) -> Dict[str, str]:
    """The value of every placeholder for ``magnus-<kind>-<name>``.

    Raises:
        SystemExit: the name is malformed or names a kind the template does not render.
    """
    if not NAME.match(distribution):
        raise SystemExit(f"'{distribution}' is not of the form magnus-<kind>-<name> (lower case)")
    _, kind_name, plugin_name = distribution.split("-", 2)
    kind = KINDS.get(kind_name)
    if kind is None:
        raise SystemExit(
            f"'{distribution}': the template renders no '{kind_name}' plugin; the kinds available are "
            f"{', '.join(sorted(KINDS))} (magnus-<kind>-<name>)"
        )
    return {
        "__PLUGIN_DIST__": distribution,
        "__PLUGIN_IMPORT__": distribution.replace("-", "_"),
        "__PLUGIN_NAME__": plugin_name,
        "__PLUGIN_CLASS__": "".join(part.capitalize() for part in plugin_name.split("-")) + kind.class_suffix,
        "__PLUGIN_GROUP__": kind.group,
        "__PLUGIN_DESCRIPTION__": kind.description,
    }


def render(distribution: str, destination: Path) -> Path:
    """Copy the template of the distribution's kind to ``destination``, placeholders replaced; return it."""
    values = replacements(distribution)
    if destination.exists():
        raise SystemExit(f"{destination} exists already")
    kind = distribution.split("-", 2)[1]
    sources: Dict[str, Path] = {}
    for layer in (TEMPLATE / "common", TEMPLATE / kind):  # the kind's files win
        for source in sorted(layer.rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts:
                sources[str(source.relative_to(layer))] = source
    for relative, source in sorted(sources.items()):
        text = source.read_text()
        for placeholder, value in values.items():
            relative = relative.replace(placeholder, value)
            text = text.replace(placeholder, value)
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        shutil.copymode(source, target)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("distribution", help=f"magnus-<kind>-<name>, kind one of: {', '.join(sorted(KINDS))}")
    parser.add_argument("destination", type=Path)
    arguments = parser.parse_args()
    print(render(arguments.distribution, arguments.destination))


if __name__ == "__main__":
    main()

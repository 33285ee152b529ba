"""Render a magnus plugin package from the template: ``render_plugin.py KIND NAME DESTINATION``.

A thin wrapper around copier (``pip install copier``) and the template in ``plugin/``: the kind and
the name are arguments, never guessed from a distribution name, and copier's own checks apply (a
``--distribution`` naming another kind, such as ``magnus-runlog-x`` for a secrets backend, is
refused). Bad input is one line on stderr and exit status 2.

The package renders from ``plugin/``, a folder: to update it later from newer versions of the
template with ``copier update``, render it from the repository instead (``--source`` with a clone's
root or its URL), so that copier records the template's commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

TEMPLATE = Path(__file__).resolve().parent / "plugin"
KINDS = ("executor", "run_log_store", "catalog", "secrets", "experiment_tracker", "tasks", "nodes", "pickler")


def answers(arguments: argparse.Namespace) -> Dict[str, str]:
    """The answers given on the command line; copier derives the others from them."""
    given = {
        "kind": arguments.kind,
        "plugin_name": arguments.name,
        "distribution": arguments.distribution,
        "class_name": arguments.class_name,
        "description": arguments.description,
    }
    return {question: value for question, value in given.items() if value is not None}


def render(source: str, destination: Path, data: Dict[str, str]) -> None:
    """Render the template at ``source`` into ``destination`` with ``data``, asking nothing.

    Raises:
        SystemExit: copier is missing, the destination holds files, or an answer is refused.
    """
    try:
        import copier
        from copier.errors import CopierError
    except ImportError:
        raise SystemExit("copier is not installed: pip install copier") from None
    if destination.exists() and any(destination.iterdir()):
        raise SystemExit(f"{destination} exists and is not empty")
    try:
        copier.run_copy(source, destination, data=data, defaults=True, quiet=True)
    except (CopierError, ValueError) as exc:  # copier's refusals of an answer are ValueErrors
        raise SystemExit(str(exc).strip().splitlines()[0]) from None


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=KINDS, help="the kind of plugin (its entry-point namespace)")
    parser.add_argument("name", help="the plugin's name in a configuration (type: NAME), e.g. sqlite")
    parser.add_argument("destination", type=Path, help="the new package's folder")
    parser.add_argument("--distribution", help="the distribution's name (default magnus-<kind word>-<name>)")
    parser.add_argument("--class-name", help="the plugin's class (default from the name and the kind)")
    parser.add_argument("--description", help="one line saying what the plugin does")
    parser.add_argument(
        "--source", default=str(TEMPLATE), help="the template: this folder (default), a repository's root or URL"
    )
    arguments = parser.parse_args(argv)
    try:
        render(arguments.source, arguments.destination, answers(arguments))
    except SystemExit as exc:
        print(f"render_plugin.py: {exc}", file=sys.stderr)
        sys.exit(2)
    print(arguments.destination)


if __name__ == "__main__":
    main()

"""A map's branches as the items of Azure ML's ``parallel_for``, written on the compute after the fan-out.

``magnus fan ... -m out --iterations-file F`` (core) writes the JSON list of the branches' map
positions, each a JSON text. ``parallel_for`` iterates over a JSON list of objects, one key per
input of its body node: here ``{"map_variable": <the position, quoted for the shell>}``, as
Azure ML puts an input's value into the body's command as written
(``--map-variable ${{inputs.map_variable}}``).

Run as ``python -m magnus_executor_azureml.items ITERATIONS_FILE ITEMS_FILE``; it imports no azure.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import List, Optional

from magnus_executor_azureml.constants import MAP_INPUT


def as_items(iterations: str) -> str:
    """The ``parallel_for`` items (JSON) of core's iterations (JSON list of map positions as JSON texts)."""
    positions: List[str] = json.loads(iterations)
    return json.dumps([{MAP_INPUT: shlex.quote(position)} for position in positions])


def main(argv: Optional[List[str]] = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 2:
        print("usage: python -m magnus_executor_azureml.items ITERATIONS_FILE ITEMS_FILE", file=sys.stderr)
        return 2
    source, target = (Path(argument) for argument in arguments)
    if target.is_dir():  # Azure ML may hand an output as a folder: the value is its file "output"
        target = target / "output"
    target.write_text(as_items(source.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A launch request's command line as Step Functions builds it for each job: intrinsic functions.

The state machine is made once per pipeline and started once per run, so the run id, the map
position and the retry number are not known when it is rendered: they are the execution's name
(``$$.Execution.Name``; inside a map's item ``$.run_id``, which the Map state's ``ItemSelector``
passes down: an item of a distributed Map is a child execution with a name of its own), the item
of the Map state (``$.map_variable``) and the Task state's retry count (``$$.State.RetryCount``).
The request is rendered by core (``to_argv``) with a marker in place of each; every word of it
becomes an argument of ``States.Array``: a string literal, a reference path, or ``States.Format``
of a literal holding a marker (a file named after the run).

String literals of intrinsic functions escape ``'``, ``{``, ``}`` and ``\\`` with a backslash (the
States Language's rule), so any step name or path travels as written.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence

# Markers put in a request where Step Functions fills in a value; no user text holds a NUL.
RUN_ID = "\x00run\x00"
MAP_VARIABLE = "\x00map\x00"
RETRY = "\x00retry\x00"
ITEMS_ID = "\x00items\x00"

# What each marker becomes in the state machine (the run id: at the top; inside a map's items).
_FILLED: Dict[str, str] = {
    RUN_ID: "$$.Execution.Name",
    MAP_VARIABLE: "$.map_variable",
    RETRY: "$$.State.RetryCount",
    ITEMS_ID: "$.magnus_items.id",
}
RUN_ID_IN_ITEMS = "$.run_id"


def run_id(in_map: bool) -> str:
    """The path of the run id: the execution's name, or inside a map's items what its ItemSelector passed."""
    return RUN_ID_IN_ITEMS if in_map else _FILLED[RUN_ID]


def _filled(marker: str, in_map: bool) -> str:
    return run_id(in_map) if marker == RUN_ID else _FILLED[marker]


_MARKER = re.compile("|".join(re.escape(marker) for marker in _FILLED))
_ESCAPED = re.compile(r"(['{}\\])")


def literal(text: str) -> str:
    """``text`` as a string literal of an intrinsic function."""
    return "'" + _ESCAPED.sub(r"\\\1", text) + "'"


def word(text: str, in_map: bool = False) -> str:
    """One argument of ``States.Array`` giving ``text``, its markers filled in by Step Functions
    (``in_map``: in a state of a map's items)."""
    markers = _MARKER.findall(text)
    if not markers:
        return literal(text)
    if text in _FILLED and text != RETRY:
        return _filled(text, in_map)
    template = "{}".join(literal(part)[1:-1] for part in _MARKER.split(text))
    return f"States.Format('{template}', {', '.join(_filled(marker, in_map) for marker in markers)})"


def array(words: Sequence[str], in_map: bool = False) -> str:
    """``States.Array(...)`` of ``words`` (a command line), markers filled in."""
    return "States.Array(" + ", ".join(word(text, in_map) for text in words) + ")"


def format_path(template_parts: List[str], in_map: bool = False) -> str:
    """``States.Format`` of a text made of literal parts and markers (a key in S3 named after the run)."""
    return word("".join(template_parts), in_map)

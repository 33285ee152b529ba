"""What magnus keeps as data: JSON, as run logs, environment variables and trackers record it.

A parameter is written as JSON in the run log, in ``MAGNUS_PRM_<name>`` variables and in
experiment trackers, and read back from there by later steps and resumed runs. A value that JSON
cannot hold would come back changed (``NaN`` is written as the non-JSON ``NaN`` in one place and
as ``null`` in another, a resumed run sees ``None``), and a value nested thousands of levels deep
breaks the writers (python's recursion limit). So every value that enters a run is checked once,
where it enters, by :func:`json_data_problem`; the YAML reader applies the same limits while it
builds a document.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Dict, List, Mapping, Tuple

# Levels of lists and mappings a value may nest (a scalar alone is one level).
DEPTH_LIMIT = 100

_SCALARS = (str, int, type(None))


def too_deep() -> str:
    """The problem of a value nested deeper than :data:`DEPTH_LIMIT`, as every reader says it."""
    return f"nested deeper than {DEPTH_LIMIT} levels"


def not_finite(value: float) -> str:
    """The problem of a float JSON cannot hold (``NaN``, ``Infinity``, ``-Infinity``)."""
    return f"{_json_text(value)} is not JSON data (JSON has no NaN or infinity): use null or a string"


def json_data_problem(value: Any) -> str:
    """``''`` when ``value`` is JSON data magnus keeps unchanged, else what is wrong, in a few words.

    JSON data is ``None``, booleans, integers, finite floats, text, lists (tuples) of JSON data
    and dicts whose keys are text (numbers, booleans and ``None`` too, written as text, as
    :func:`json.dumps` does) and whose values are JSON data, nested at most :data:`DEPTH_LIMIT`
    levels. The walk is iterative (no recursion limit) and visits each value once.
    """
    return _walk(value, strict=True)


def non_finite_problem(value: Any) -> str:
    """Like :func:`json_data_problem`, looking only for ``NaN`` and infinities (and depth).

    For what a serialiser turns into JSON afterwards (a pydantic model's python dump holds dates,
    which its JSON dump writes as text, but writes a ``NaN`` of an untyped field as ``null``).
    """
    return _walk(value, strict=False)


def _walk(value: Any, strict: bool) -> str:
    pending: List[Tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return not_finite(item)
            continue
        if isinstance(item, (list, tuple, dict)):
            if depth >= DEPTH_LIMIT and item:
                return too_deep()
            if isinstance(item, dict):
                if strict:
                    for key in item:
                        if not isinstance(key, (str, int, float, type(None))):
                            return f"a key of type {type(key).__name__} is not JSON data (keys are text)"
                pending.extend((inner, depth + 1) for inner in item.values())
            else:
                pending.extend((inner, depth + 1) for inner in item)
            continue
        if strict:
            return f"a value of type {type(item).__name__} is not JSON data (use magnus.put_object for objects)"
    return ""


def _json_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# An attempt records a parameter it received in full up to this size of JSON, else by reference.
RECORDED_IN_FULL_BYTES = 64 * 1024


def by_reference(values: Mapping[str, Any], limit: int = RECORDED_IN_FULL_BYTES) -> Dict[str, Any]:
    """``values`` with each value whose JSON is over ``limit`` bytes replaced by a reference to it.

    Every attempt of a step records the parameters it received: a large parameter copied into each
    of them made a run log grow with its size times the steps (a 6 MB parameter read by five steps,
    six copies). The run's ``parameters`` hold each value once; an attempt names a large one by its
    size and digest (``<parameter of 6,240,009 bytes of JSON, sha256 3f2a9c...>``), which says
    whether two steps saw the same value without keeping it again.
    """
    kept: Dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str) and len(value) <= limit // 6:  # at most 6 bytes a character (\u001b): small
            kept[name] = value
            continue
        text = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if len(text) <= limit:
            kept[name] = value
        else:
            digest = hashlib.sha256(text).hexdigest()[:16]
            kept[name] = f"<parameter of {len(text):,} bytes of JSON, sha256 {digest}...>"
    return kept

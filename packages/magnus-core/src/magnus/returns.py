"""What a python task's ``returns`` names: each value its function returns, as a parameter, an object or a metric.

Spelled as runnable 0.50 spells it::

    Task(name="train", command="steps.train", returns=["x", pickled("model"), metric("score")])

    returns: [x, {name: model, kind: object}, {name: score, kind: metric}]

A plain name is a parameter (JSON data, as every parameter); an ``object`` is any picklable value,
kept through the pickler in the run's catalog and given to later steps whose function has an
argument of that name; a ``metric`` is tracked as ``track_this`` tracks it. One name takes the
value the function returns; several names take the items of the tuple it returns, in order.
A task without ``returns`` keeps magnus 0.5.1's contract (a pydantic model or a dict of parameters).
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Sequence

from pydantic import BaseModel, ConfigDict

from magnus.errors import ParameterError
from magnus.parameters import parameter_problem, plain_name_problem, to_jsonable

PARAMETER = "parameter"
OBJECT = "object"
METRIC = "metric"
KINDS = (PARAMETER, OBJECT, METRIC)

Kind = Literal["parameter", "object", "metric"]


class Returned(BaseModel):
    """One name of ``returns`` and what the value it names becomes (a parameter unless said)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Kind = "parameter"


def pickled(name: str) -> Returned:
    """The returned value named ``name`` is an object: pickled into the run's catalog, any python value.

    A later step gets it as its function's argument ``name`` (or with ``magnus.get_object(name)``).
    """
    return Returned(name=name, kind="object")


def metric(name: str) -> Returned:
    """The returned value named ``name`` is a metric: in the step log and sent to the experiment tracker."""
    return Returned(name=name, kind="metric")


def parse_returns(declared: Any) -> List[Returned]:
    """``returns`` as a step declares it (names, ``{name, kind}`` mappings, :func:`pickled`/:func:`metric`).

    Raises:
        ValueError: not a list, an entry neither a name nor ``{name, kind}``, an unknown kind, a
            name that is not a plain name, or a name given twice; the message says which, in one line.
    """
    if not isinstance(declared, (list, tuple)):
        raise ValueError(f"must be a list of names, got {type(declared).__name__}")
    parsed: List[Returned] = []
    for entry in declared:
        parsed.append(_one(entry))
    seen: set[str] = set()
    for returned in parsed:
        if returned.name in seen:
            raise ValueError(f"'{returned.name}' is named twice")
        seen.add(returned.name)
    return parsed


def _one(entry: Any) -> Returned:
    if isinstance(entry, Returned):
        returned = entry
    elif isinstance(entry, str):
        returned = Returned(name=entry)
    elif isinstance(entry, dict):
        unknown = sorted(str(key) for key in entry if key not in ("name", "kind"))
        if unknown or "name" not in entry:
            raise ValueError(f"an entry is a name or {{name: ..., kind: ...}}, got {entry!r}")
        kind = entry.get("kind", PARAMETER)
        if kind not in KINDS:
            raise ValueError(f"'{entry['name']}': unknown kind {kind!r} (known: {', '.join(KINDS)})")
        returned = Returned(name=entry["name"], kind=kind)
    else:
        raise ValueError(f"an entry is a name or {{name: ..., kind: ...}}, got {entry!r}")
    problem = plain_name_problem(returned.name)
    if problem:
        raise ValueError(f"a returned name {problem}")
    return returned


def name_values(value: Any, returns: Sequence[Returned], command: str) -> Dict[str, Any]:
    """What the function of ``command`` returned, by the names of ``returns``.

    One name takes the whole value; several take the items of a returned tuple, in order. A value
    named as a parameter must be one (JSON data; a pydantic model becomes its dict).

    Raises:
        ParameterError: the count of values is not the count of names, or a parameter's value is
            not JSON data; the message names the function, the names and what was returned.
    """
    names = [returned.name for returned in returns]
    if len(names) == 1:
        values: Sequence[Any] = [value]
    elif isinstance(value, tuple) and len(value) == len(names):
        values = value
    else:
        got = (
            f"a tuple of {len(value)} values ({', '.join(type(item).__name__ for item in value)})"
            if isinstance(value, tuple)
            else f"one {type(value).__name__}"
        )
        raise ParameterError(
            f"{command} returned {got}, but its step returns {len(names)} values ({', '.join(names)}): "
            f"return a tuple of {len(names)}, one value for each name"
        )
    named: Dict[str, Any] = {}
    for returned, item in zip(returns, values, strict=True):
        if returned.kind == OBJECT:
            named[returned.name] = item
            continue
        item = to_jsonable(item)
        problem = parameter_problem(returned.name, item)
        if problem:
            called = problem if returned.kind == PARAMETER else problem.replace("parameter", "metric", 1)
            raise ParameterError(f"{command} returned {called}")
        named[returned.name] = item
    return named


__all__ = ["Returned", "metric", "name_values", "parse_returns", "pickled"]

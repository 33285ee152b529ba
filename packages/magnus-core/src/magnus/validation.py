"""Turning validation failures into one-line messages a user can act on."""

from __future__ import annotations

from typing import Any, Iterable, List

from pydantic import ValidationError


def join_location(*parts: Any) -> str:
    """``steps``, ``train``, ``next`` -> ``steps.train.next``; empty parts are dropped."""
    return ".".join(str(part) for part in parts if part not in ("", None))


def describe_validation_error(
    exc: ValidationError, *, source: str, location: str, known_fields: Iterable[str] = ()
) -> List[str]:
    """One ``source: location.field: what is wrong`` line per pydantic error."""
    allowed = ", ".join(sorted(known_fields))
    lines = []
    for error in exc.errors(include_url=False):
        where = join_location(location, *error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            what = "unknown field" + (f" (allowed: {allowed})" if allowed else "")
        elif kind == "missing":
            what = "required field is missing"
        else:
            what = error["msg"]
        lines.append(f"{source}: {where}: {what}")
    return lines

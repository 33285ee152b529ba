"""Turning validation failures into one-line messages a user can act on."""

from __future__ import annotations

from typing import Annotated, Any, Iterable, List

from pydantic import AfterValidator, ValidationError

from magnus.names import did_you_mean, working_folder_problem
from magnus.terminal import for_terminal


def join_location(*parts: Any) -> str:
    """``steps``, ``train``, ``next`` -> ``steps.train.next``; empty parts are dropped.

    Control characters in a part (a NUL in a step name) are escaped (:func:`~magnus.terminal.for_terminal`),
    so the message stays one line.
    """
    return ".".join(for_terminal(str(part)) for part in parts if part not in ("", None))


def describe_validation_error(
    exc: ValidationError, *, source: str, location: str, known_fields: Iterable[str] = ()
) -> List[str]:
    """One ``source: location.field: what is wrong`` line per pydantic error; an unknown field says
    the allowed ones, and the one meant when it is a typo of one."""
    known = sorted(known_fields)
    allowed = ", ".join(known)
    lines = []
    for error in exc.errors(include_url=False):
        where = join_location(location, *error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            what = "unknown field" + (f" (allowed: {allowed})" if allowed else "")
            what += did_you_mean(str(error["loc"][-1]), known) if error["loc"] else ""
        elif kind == "missing":
            what = "required field is missing"
        elif kind == "value_error" and "error" in error.get("ctx", {}):
            what = str(error["ctx"]["error"])  # a validator's own sentence, without pydantic's prefix
        else:
            what = error["msg"]
        lines.append(f"{source}: {where}: {what}")
    return lines


def _inside_working_folder(value: str) -> str:
    problem = working_folder_problem(value) if value else ""
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


# A folder steps read and write (``compute_data_folder``): inside the working folder, or '' (unset).
WorkingFolder = Annotated[str, AfterValidator(_inside_working_folder)]

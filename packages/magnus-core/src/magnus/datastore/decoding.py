"""Reading stored run-log data back into models, and saying in a few words why it does not read.

A store decodes what it wrote itself: JSON text (a file, a journal line, a row's column) into the
run-log models. When the data is not what it wrote (a file cut short, a garbled line, a row edited
by hand, a link planted in its folder) the store raises :class:`Unreadable` with a short reason,
and :meth:`~magnus.datastore.base.BaseRunLogStore.reading` turns it into
:class:`~magnus.errors.RunLogUnreadableError`, naming the run and where its log is kept. A reason
never repeats the data: a run log holds parameters.

Depth: the log of a pipeline nested as deep as parsing allows, with parameters as deep as a YAML
file allows, nests deeper than pydantic's JSON parser goes (200 levels). Such a log is parsed by
python's ``json`` instead (about 1,000 levels) and validated from there: only deep logs pay for it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Type, TypeVar, Union

from pydantic import BaseModel, ValidationError

from magnus.datastore import models
from magnus.datastore.models import RunLog
from magnus.validation import join_location

Model = TypeVar("Model", bound=BaseModel)

# The names a location may show: the fields of the run-log models. Any other part of a location
# is a key of the stored data (a step's or a parameter's name) and is shown as '*'.
_FIELDS = frozenset(
    name
    for model in (models.RunLog, models.StepLog, models.BranchLog, models.StepAttempt, models.CodeIdentity)
    for name in model.model_fields
) | frozenset(models.DataCatalog.model_fields)


class Unreadable(Exception):
    """Stored data that does not decode; ``reason`` says why, without the data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_json(raw: Union[bytes, str], what: str = "") -> Any:
    """The JSON value of ``raw``, the data named ``what`` (a file, a line, a column; '' for the whole log).

    Raises:
        Unreadable: ``raw`` is not UTF-8 JSON, or nests deeper than python parses.
    """
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise Unreadable(_named(what, "not UTF-8 text")) from None
    except json.JSONDecodeError as exc:
        raise Unreadable(_named(what, f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})")) from None
    except RecursionError:
        raise Unreadable(_named(what, "nested too deep to read")) from None


def load_mapping(raw: Union[bytes, str], what: str = "") -> Dict[str, Any]:
    """The JSON object of ``raw``.

    Raises:
        Unreadable: ``raw`` is not a JSON object.
    """
    return mapping(load_json(raw, what), what)


def mapping(data: Any, what: str = "") -> Dict[str, Any]:
    """``data`` when it is a JSON object.

    Raises:
        Unreadable: it is another JSON value.
    """
    if not isinstance(data, dict):
        raise Unreadable(_named(what, f"a JSON {_json_type(data)}, not an object"))
    return data


def validated(model: Type[Model], data: Any, what: str = "") -> Model:
    """``data`` (decoded JSON) as a ``model``.

    Raises:
        Unreadable: ``data`` is not the layout of a ``model``.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unreadable(_named(what, describe(exc))) from None
    except RecursionError:
        raise Unreadable(_named(what, "nested too deep to read")) from None


def load_run_log(raw: bytes, what: str = "") -> RunLog:
    """A whole run log from its JSON text (magnus 0.5.1's layout), however deep it nests.

    Raises:
        Unreadable: ``raw`` is not a run log's JSON.
    """
    try:
        return RunLog.model_validate_json(raw)
    except ValidationError as exc:
        if not _too_deep_for_pydantic(exc):
            raise Unreadable(_named(what, describe(exc))) from None
    return validated(RunLog, load_json(raw, what), what)


def describe(exc: ValidationError) -> str:
    """The first problem of ``exc`` as ``location: what is wrong``, and how many more.

    Nothing of the input is shown: neither values nor the keys of mappings (``steps.*.status``).
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    where = join_location(*(_shown(part) for part in first["loc"]))
    message = first["msg"]
    if first["type"] == "json_invalid":
        message = "not JSON: " + message.removeprefix("Invalid JSON: ")
    text = f"{where}: {message}" if where else message
    return text if len(errors) == 1 else f"{text} (and {len(errors) - 1} more)"


def _named(what: str, problem: str) -> str:
    return f"{what}: {problem}" if what else problem


def _too_deep_for_pydantic(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" and "recursion limit" in error["msg"] for error in exc.errors())


def _shown(part: Any) -> str:
    """A part of a location: a field's name or a list index; '*' for a key of the data."""
    return str(part) if isinstance(part, int) or part in _FIELDS else "*"


def _json_type(data: Any) -> str:
    if isinstance(data, list):
        return "list"
    if isinstance(data, str):
        return "string"
    if data is None:
        return "null"
    return "number" if isinstance(data, (int, float)) and not isinstance(data, bool) else "boolean"

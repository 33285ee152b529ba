"""Parameters as magnus 0.5.1 passes them.

The initial parameters come from a YAML file (``-p``), overridden by ``MAGNUS_PRM_<name>``
environment variables (JSON-decoded when they parse). Python functions receive parameters by
argument name, cast to the annotated type (pydantic models included), and return a pydantic model
or a dict whose fields merge into the run's parameters.

Every parameter is also the environment variable ``MAGNUS_PRM_<name>`` of every task, and is
recorded as JSON: wherever a parameter enters a run (the file, the environment, what a step
returns, exports or sets) its name must be able to name a variable (:func:`parameter_name_problem`)
and its value must be JSON data (:func:`magnus.json_data.json_data_problem`), or it is refused in
one line naming where it came from and the parameter.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import os
from typing import Any, Callable, Dict, Mapping, Optional

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from magnus import defaults
from magnus.errors import ArgumentError, ParameterError
from magnus.json_data import json_data_problem, non_finite_problem, too_deep
from magnus.yaml_file import load_yaml_mapping

# The longest parameter name, in UTF-8 bytes: a name is in every task's environment.
NAME_MAX_BYTES = 255
# ``MAGNUS_<rest>`` too large for the environment is in the file named by ``MAGNUS_FILE_<rest>``
# (see magnus.runtime.environment): outside the ``MAGNUS_PRM_`` prefix, no parameter's variable.
FILE_PREFIX = "MAGNUS_FILE_"
_MAGNUS = "MAGNUS_"


def file_variable(variable: str) -> str:
    """The variable naming the file that holds ``variable``'s value: ``MAGNUS_PRM_x`` -> ``MAGNUS_FILE_PRM_x``."""
    return FILE_PREFIX + variable[len(_MAGNUS) :]


def valued_variable(variable: str) -> str:
    """The variable whose value the file named by ``variable`` holds (:func:`file_variable` undone)."""
    return _MAGNUS + variable[len(FILE_PREFIX) :]


def plain_name_problem(name: Any) -> str:
    """``''`` when ``name`` is a plain name (a Python identifier, as in ``x``, ``good_enough``), else why not.

    Names a step reads a run parameter by (a conditional's ``parameter``, a loop's ``break_on``)
    or gives one (``index_as``) must be plain: they are function arguments and variables too.
    """
    if isinstance(name, str) and name.isidentifier() and name.isascii():
        return ""
    return f"must be a plain name (letters, digits and '_', not starting with a digit), got {name!r}"


def parameter_name_problem(name: str) -> str:
    """``''`` when ``name`` can be a parameter's name, else why not.

    A name becomes the environment variable ``MAGNUS_PRM_<name>``: it cannot be empty (the
    variable would name nothing) or hold ``=`` or NUL (no environment can hold them), and it is
    at most :data:`NAME_MAX_BYTES` bytes.
    """
    if not name:
        return "a name cannot be empty"
    variable = f"{defaults.PARAMETER_PREFIX}<name>"
    for character, called in (("=", "'='"), ("\0", "NUL")):
        if character in name:
            return f"a name cannot contain {called} (it is in the environment variable {variable})"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
        return f"a name is at most {NAME_MAX_BYTES} bytes"
    return ""


def parameter_problem(name: str, value: Any) -> str:
    """``''`` when ``name`` and ``value`` can be a parameter, else ``parameter 'name': what is wrong``."""
    problem = parameter_name_problem(name) or json_data_problem(value)
    return f"parameter {name!r}: {problem}" if problem else ""


def check_parameters(parameters: Mapping[str, Any], source: str) -> None:
    """Refuse the first parameter whose name or value cannot be a parameter.

    Raises:
        ParameterError: ``<source>: parameter '<name>': <what is wrong>``.
    """
    for name, value in parameters.items():
        problem = parameter_problem(name, value)
        if problem:
            raise ParameterError(f"{source}: {problem}")


def load_parameters_file(path: str) -> Dict[str, Any]:
    """The mapping in a YAML parameters file; anything else is refused with the file named.

    The YAML reader refuses values that are not JSON data (naming the line); the names are
    checked here.
    """
    content = load_yaml_mapping(path, "parameters file", ParameterError, "a mapping of names to values")
    parameters = {str(key): value for key, value in content.items()}
    for name in parameters:
        problem = parameter_name_problem(name)
        if problem:
            raise ParameterError(f"{path}: parameter {name!r}: {problem}")
    return parameters


def parameters_from_environment(environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """``MAGNUS_PRM_<name>`` variables as ``{name: value}``, names lower-cased as in magnus 0.5.1.

    Raises:
        ParameterError: a value is JSON that is not JSON data (``NaN``, nested too deep), or a
            name is too long; the message names the variable and the parameter.
    """
    found: Dict[str, Any] = {}
    for key, raw in (os.environ if environ is None else environ).items():
        if key.startswith(defaults.PARAMETER_PREFIX) and len(key) > len(defaults.PARAMETER_PREFIX):
            name = key[len(defaults.PARAMETER_PREFIX) :].lower()
            found[name] = decode_parameter(name, raw, key)
    return found


def initial_parameters(parameters_file: str = "") -> Dict[str, Any]:
    """What a new run starts with: the file, then the environment on top."""
    parameters = load_parameters_file(parameters_file) if parameters_file else {}
    parameters.update(parameters_from_environment())
    return parameters


def decode_value(raw: str) -> Any:
    """JSON when it parses, the literal string otherwise."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def decode_parameter(name: str, raw: str, variable: str) -> Any:
    """The value of parameter ``name`` from the text of its environment variable ``variable``.

    JSON when it parses, the literal string otherwise (:func:`decode_value`), as magnus 0.5.1.

    Raises:
        ParameterError: ``<variable>: parameter '<name>': <what is wrong>``, for JSON that is not
            JSON data magnus keeps (``NaN``, ``Infinity``, nested deeper than the limit), or a
            name that cannot be a parameter's.
    """
    try:
        value = decode_value(raw)
    except RecursionError:  # deeper than python's parser goes: far deeper than the limit
        problem = f"parameter {name!r}: {too_deep()}"
    else:
        problem = parameter_problem(name, value)
    if problem:
        raise ParameterError(f"{variable}: {problem}")
    return value


def encode_value(value: Any) -> str:
    """How a parameter is put in an environment variable (JSON, as magnus 0.5.1 does)."""
    return json.dumps(to_jsonable(value))


def to_jsonable(value: Any) -> Any:
    """Pydantic models become their (aliased) JSON-compatible dicts; the rest is left as is.

    A model holding ``NaN`` or an infinity is given as its python dump, which
    :func:`~magnus.json_data.json_data_problem` refuses: its JSON dump would write ``null`` for
    some of them, silently.
    """
    if isinstance(value, BaseModel):
        python = value.model_dump(by_alias=True)
        if non_finite_problem(python):
            return python
        return value.model_dump(mode="json", by_alias=True)
    return value


def returned_parameters(value: Any, command: str) -> Dict[str, Any]:
    """What a function returned, as parameters to merge into the run's.

    Raises:
        ParameterError: the function returned something that is not a model, a dict or None, or
            a parameter that cannot be one (:func:`parameter_problem`), named.
    """
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        returned: Dict[str, Any] = to_jsonable(value)
    elif isinstance(value, dict):
        returned = {str(key): to_jsonable(item) for key, item in value.items()}
    else:
        raise ParameterError(
            f"{command} returned {type(value).__name__}: return a pydantic model or a dict to set parameters "
            "(or use magnus.put_object for other objects)"
        )
    for name, item in returned.items():
        problem = parameter_problem(name, item)
        if problem:
            raise ParameterError(f"{command} returned {problem}")
    return returned


@functools.lru_cache(maxsize=1024)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def cast_value(value: Any, annotation: Any) -> Any:
    """``value`` as ``annotation``: pydantic models built from dicts, scalars converted."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    if isinstance(annotation, type) and isinstance(value, annotation) and annotation is not bool:
        return value
    if annotation is str and isinstance(value, (int, float, bool)):
        return str(value)
    return _adapter(annotation).validate_python(value)


@functools.lru_cache(maxsize=1024)
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func, eval_str=True)


def accepted_names(func: Callable[..., Any]) -> Optional[list[str]]:
    """The parameter names ``func`` takes, with the fields of model arguments; None for ``**kwargs``."""
    names: list[str] = []
    for name, spec in _signature(func).parameters.items():
        if spec.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        names.append(name)
        if _is_model(spec.annotation):
            names.extend(spec.annotation.model_fields)
    return names


def objects_taken(func: Callable[..., Any], available: Mapping[str, Any]) -> list[str]:
    """The arguments of ``func`` an object may fill: without a default, named by no parameter.

    An argument annotated with a pydantic model is left out: it is built from the parameters, as
    in magnus 0.5.1 (looking for an object first would cost a catalog look-up at every step).
    """
    taken: list[str] = []
    for name, spec in _signature(func).parameters.items():
        if spec.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if name in available or spec.default is not inspect.Parameter.empty or _is_model(spec.annotation):
            continue
        taken.append(name)
    return taken


def bind_arguments(
    func: Callable[..., Any], parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
) -> Dict[str, Any]:
    """The keyword arguments to call ``func`` with, taken from the parameters by name.

    A map's ``iterate_as`` value is a parameter for the steps of its branch. An argument
    annotated with a pydantic model that is not itself a parameter is built from the root
    parameters (magnus 0.5.1's behaviour). ``**kwargs`` receives every parameter not bound.

    Raises:
        ParameterError: a required argument has no parameter, or a value does not fit its type.
    """
    available = dict(parameters)
    if map_variable:
        available.update(map_variable)
    name_of = getattr(func, "__qualname__", repr(func))
    bound: Dict[str, Any] = {}
    takes_rest = False
    for name, spec in _signature(func).parameters.items():
        if spec.kind is inspect.Parameter.VAR_KEYWORD:
            takes_rest = True
            continue
        if spec.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotation = spec.annotation
        try:
            if name in available:
                bound[name] = cast_value(private_copy(available[name]), annotation)
            elif _is_model(annotation):
                bound[name] = _model_from_root(annotation, available)
            elif spec.default is not inspect.Parameter.empty:
                continue
            else:
                known = ", ".join(sorted(available)) or "none"
                raise ArgumentError(f"{name_of} needs parameter '{name}', which is not set (set: {known})")
        except ValidationError as exc:
            given = available.get(name)
            shown = json.dumps(given, default=str)
            shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
            raise ArgumentError(
                f"{name_of}: parameter '{name}' expects {_type_name(annotation)}, got {shown} "
                f"({type(given).__name__}): {_first_error(exc)}"
            ) from None
    if takes_rest:
        bound.update({key: private_copy(value) for key, value in available.items() if key not in bound})
    return bound


def private_copy(value: Any) -> Any:
    """A copy of a container value, so a function changing its argument does not change the run's parameter."""
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_from_root(model: type[BaseModel], available: Dict[str, Any]) -> BaseModel:
    picked = _lenient(model).model_validate(available).model_dump()
    return model.model_validate(picked)


@functools.lru_cache(maxsize=256)
def _lenient(model: type[BaseModel]) -> type[BaseModel]:
    """The model, ignoring fields it does not declare (the root holds many other parameters)."""
    return type(f"Lenient{model.__name__}", (model,), {"model_config": ConfigDict(extra="ignore")})


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", repr(annotation))


def _first_error(exc: ValidationError) -> str:
    """What pydantic found first, in its words (``Input should be a valid integer``)."""
    errors = exc.errors()
    return str(errors[0]["msg"]) if errors else _first_line(exc)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(exc).__name__

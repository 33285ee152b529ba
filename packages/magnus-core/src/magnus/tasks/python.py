"""``command_type: python``: call ``module.function`` in this process."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Any, Callable, ClassVar, Dict, List, Sequence

from pydantic import Field, field_validator

from magnus import defaults
from magnus.errors import TaskFailedError
from magnus.parameters import accepted_names, bind_arguments, objects_taken, returned_parameters
from magnus.returns import Returned, name_values, parse_returns
from magnus.tasks.base import BaseTaskType


class PythonTaskType(BaseTaskType):
    """Calls a python function, giving it parameters by argument name.

    Without ``returns`` the function returns ``None``, a pydantic model or a dict; the fields of
    what it returns become (or replace) parameters of the run (magnus 0.5.1). With ``returns``
    (see :mod:`magnus.returns`) what it returns is named: a value, or a tuple of one value per name.
    An argument without a default that no parameter names takes the object of that name, when the
    run holds one.
    """

    task_type: ClassVar[str] = "python"

    returns: List[Returned] = Field(default_factory=list)

    @field_validator("returns", mode="before")
    @classmethod
    def _returns_are_names(cls, declared: Any) -> List[Returned]:
        return parse_returns(declared)

    @functools.cached_property
    def function(self) -> Callable[..., Any]:
        """The function, imported once per process however many steps and attempts call it.

        Raises:
            TaskFailedError: the module or the function cannot be found.
        """
        return import_function(self.command)

    def check(self) -> None:
        """The module imports and names a callable: imported here once, for the whole run."""
        _ = self.function

    def execute_command(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        arguments = bind_arguments(self.function, parameters, map_variable)
        value = self.function(**arguments)
        if self.returns:
            return name_values(value, self.returns, self.command)
        return returned_parameters(value, self.command)

    def returned(self) -> Sequence[Returned]:
        return self.returns

    def objects_wanted(self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None) -> List[str]:
        """Arguments without a default that no parameter names (nor a pydantic model annotates)."""
        try:
            return objects_taken(self.function, {**parameters, **(map_variable or {})})
        except TaskFailedError:
            return []

    def parameters_used(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        """The parameters the function's arguments take (all of them for ``**kwargs``)."""
        available = {**parameters, **(map_variable or {})}
        try:
            names = accepted_names(self.function)
        except TaskFailedError:
            return {}
        if names is None:
            return available
        return {name: available[name] for name in names if name in available}

    def parameters_keyed(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        """Only what the function's arguments take: a parameter it never reads is not part of its key."""
        return self.parameters_used(parameters, map_variable)

    def code_versions(self) -> Dict[str, str]:
        """The function's name, and the source of its module and of the project modules it imports
        (transitively), each file by its path under the working folder."""
        from magnus.source_hash import module_sources, text_hash

        function = self.function
        module = getattr(function, "__module__", None) or self.command.rpartition(".")[0]
        return {"function": text_hash(self.command.strip()), **module_sources(module)}


def import_function(command: str) -> Callable[..., Any]:
    """The callable named by a dotted path, importable from the working folder as in magnus 0.5.1."""
    module_name, _, attribute = command.strip().rpartition(".")
    if not module_name:
        raise TaskFailedError(f"command '{command}' must be a dotted path: module.function")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskFailedError(f"cannot import '{module_name}' for command '{command}': {exc}") from exc
    except Exception as exc:  # the module itself failed while being imported
        raise TaskFailedError(
            f"cannot import '{module_name}' for command '{command}': {type(exc).__name__}: {exc}"
        ) from exc
    try:
        function = getattr(module, attribute)
    except AttributeError:
        raise TaskFailedError(f"module '{module_name}' has no attribute '{attribute}' (command '{command}')") from None
    if not callable(function):
        raise TaskFailedError(f"'{command}' is not callable")
    return function  # type: ignore[no-any-return]

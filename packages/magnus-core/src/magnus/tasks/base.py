"""The task type contract."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Sequence

from pydantic import BaseModel, ConfigDict, field_validator

from magnus import defaults

if TYPE_CHECKING:
    from magnus.returns import Returned


class BaseTaskType(BaseModel):
    """Runs a task's command with the run's parameters and says which parameters it sets.

    Fields of a subclass are the keys a task accepts next to ``command`` in a step (for example
    ``notebook_output_path``); unknown keys are refused.

    The step runner calls [`execute_command`][] with the run's parameters also in the
    environment (``MAGNUS_PRM_<name>``, JSON) and reads back what the command set there, so a
    task type only passes parameters in its own way (arguments, injected cells) and returns
    those it knows were set.
    """

    model_config = ConfigDict(extra="forbid")

    task_type: ClassVar[str] = ""

    command: str

    @field_validator("command")
    @classmethod
    def _command_is_not_empty(cls, command: str) -> str:
        if not command.strip():
            raise ValueError("command cannot be empty")
        return command

    def parameters_used(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        """The parameters this command receives, as the attempt records them.

        The default is all of them; task types that can tell which they read (a python
        function, by its arguments; a shell command, by the variables it names) say which, so
        that a step's log does not grow with parameters it never read: each attempt recording
        every parameter made a run log grow with the parameters times the steps.
        """
        return {**parameters, **(map_variable or {})}

    def parameters_keyed(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        """The parameters that go into the step's cache key: every one the command can read.

        The default is all of them (a shell command or a notebook may read any from its
        environment); a task type that knows exactly what it receives (a python function, by its
        arguments) says so, so that a parameter it never reads does not make it run again.
        """
        return {**parameters, **(map_variable or {})}

    def code_versions(self) -> Dict[str, str]:
        """The code the command runs, each part by name (a file, ``command``) with a hash of its text.

        Part of the step's cache key: any change of the code must change one of them. The default
        is the command itself (a shell command's text); a task type whose command names code
        elsewhere (a python function's modules, a notebook's cells) hashes that code.

        Raises:
            TaskFailedError: the code cannot be found (the step fails as it would when run).
        """
        from magnus.source_hash import text_hash

        return {"command": text_hash(self.command)}

    def returned(self) -> Sequence["Returned"]:
        """What the command's return value is, by name (its ``returns``); empty: parameters, as in 0.5.1.

        The step runner keeps each named value as its kind says (a parameter, an object, a
        metric). Only task types with a ``returns`` field say anything here.
        """
        return ()

    def objects_wanted(self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None) -> List[str]:
        """The names of objects (``returns`` of kind ``object``, ``put_object``) the command takes.

        The step runner gets those the run holds and passes them to [`execute_command`][] with
        the parameters. The default is none: only a python function says which it takes, by its
        arguments.
        """
        return []

    def check(self) -> None:
        """Refuse, before any step of the run has run, a command that cannot run in this process.

        Executors whose steps run in the process that starts the run (local, mocked) call it once
        for every task of the pipeline, nested branches included. The default checks nothing (a
        shell command is only known by running it); a task type whose command names something
        that can be looked up without running it looks it up here, and keeps what it found for
        the run rather than looking it up again.

        Raises:
            TaskFailedError: the command cannot run; the message says why, in one line.
        """

    @abstractmethod
    def execute_command(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        """Run the command and return the parameters it sets (new or changed), or ``{}``.

        ``parameters`` also holds the objects of [`objects_wanted`][] that the run holds. With
        [`returned`][] declared, what is returned is every value it names, by name, whatever
        its kind (the step runner keeps objects and metrics as such).

        What the command prints goes to ``sys.stdout``/``sys.stderr`` (the caller captures it).
        A command running in another process passes back what it exported by copying the
        ``MAGNUS_PRM_``/``MAGNUS_TRACK_`` variables into ``os.environ``.

        Raises:
            Exception: any error means the attempt failed; its message goes to the step log.
        """

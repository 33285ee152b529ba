"""``type: task``: run a command (python function, shell command, notebook, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional, Set

from pydantic import ValidationError

from magnus.errors import MagnusError
from magnus.nodes.base import ExecutableNode
from magnus.parse_context import ProblemsRecorded
from magnus.plugins import load_plugin
from magnus.tasks.base import BaseTaskType
from magnus.validation import describe_validation_error

if TYPE_CHECKING:
    from magnus.parse_context import ParseContext


class TaskNode(ExecutableNode):
    """A step that runs ``command`` with the task type ``command_type`` (default ``python``)."""

    node_type: ClassVar[str] = "task"
    keeps_execution_log: ClassVar[bool] = True

    executable: BaseTaskType

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: "ParseContext", **identity: str) -> "TaskNode":
        """Split the step's keys between the node (next, catalog, ...) and its task type."""
        node_keys = {field.alias or key for key, field in cls.model_fields.items()} - {"executable", *identity}
        node_config = {key: value for key, value in config.items() if key in node_keys}
        task_config = {key: value for key, value in config.items() if key not in node_keys}
        return cls(executable=create_task(task_config, ctx, node_keys), **node_config, **identity)

    def task(self) -> Optional[BaseTaskType]:
        return self.executable


def create_task(task_config: Dict[str, Any], ctx: "ParseContext", node_keys: Set[str]) -> BaseTaskType:
    """Build the task type named by ``command_type``; problems are recorded at the step's location."""
    config = dict(task_config)
    command_type = str(config.pop("command_type", "python"))
    try:
        task_class = load_plugin("tasks", command_type)
    except MagnusError as exc:
        ctx.problem(str(exc), "command_type")
        raise ProblemsRecorded from exc
    try:
        task: BaseTaskType = task_class(**config)
    except ValidationError as exc:
        known = node_keys | {"command_type"} | set(task_class.model_fields)
        ctx.problems.extend(
            describe_validation_error(exc, source=ctx.source, location=ctx.location, known_fields=known)
        )
        raise ProblemsRecorded from exc
    return task

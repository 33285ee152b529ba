"""``type: task``: run a command (python function, shell command, notebook, ...)."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Set

from pydantic import ValidationError

from magnus import defaults
from magnus.datastore.models import StepAttempt
from magnus.errors import MagnusError
from magnus.graph import ProblemsRecorded
from magnus.nodes.base import ExecutableNode, finish_attempt, started_attempt
from magnus.plugins import load_plugin
from magnus.tasks.base import BaseTaskType
from magnus.validation import describe_validation_error

if TYPE_CHECKING:
    from magnus.context import RunContext
    from magnus.graph import ParseContext

logger = logging.getLogger(defaults.LOGGER_NAME)


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

    def execute(
        self, context: "RunContext", map_variable: defaults.TypeMapVariable = None, mock: bool = False
    ) -> StepAttempt:
        attempt = started_attempt()
        if mock:
            return finish_attempt(attempt, defaults.SUCCESS)
        try:
            parameters = context.run_log_store.get_parameters(context.run_id)
            used = self.executable.parameters_used(parameters, map_variable)
            attempt.parameters = context.redactor.redact_data(used)
            returned = self.executable.execute_command(parameters, map_variable)
            if returned:
                context.run_log_store.set_parameters(context.run_id, context.redactor.redact_data(returned))
        except Exception as exc:
            traceback.print_exc()  # into the captured execution log and the console
            logger.debug("step %s failed", self.internal_name, exc_info=True)
            return finish_attempt(attempt, defaults.FAIL, f"{type(exc).__name__}: {exc}")
        return finish_attempt(attempt, defaults.SUCCESS)


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

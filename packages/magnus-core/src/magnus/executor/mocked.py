"""``executor: {type: mocked}``: walk a pipeline without running its tasks.

Every task passes as a success without running its command (its step log says ``mock: true``),
except the steps listed in ``patches``, whose task is replaced for this run::

    executor:
      type: mocked
      config:
        patches:
          train:
            command: tests.fakes.tiny_train
          "call shell":
            command: echo patched
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional

from pydantic import Field

from magnus.errors import ConfigurationError
from magnus.executor.base import StepHandlerExecutor
from magnus.names import did_you_mean
from magnus.nodes.base import ExecutableNode
from magnus.nodes.task import TaskNode
from magnus.runtime.handler import Ended

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices
    from magnus.runtime.units import Unit
    from magnus.tasks.base import BaseTaskType


class MockedExecutor(StepHandlerExecutor):
    """A dry run: the graph, parameters, routing and run log are real; task commands are not run."""

    service_name: ClassVar[str] = "mocked"

    patches: Dict[str, Dict[str, Any]] = Field(
        default_factory=dict,
        description="Steps (by name) whose task runs for real, with these fields replacing the task's own "
        "(command, command_type, ...). Every other task passes without running.",
    )

    def check(self, services: "RunServices") -> None:
        """Refuse patches of steps that do not exist or have no task, and commands that cannot run.

        Every task's command is checked as the local executor checks it (a dry run that passes
        names only functions that exist), a patched step's with its patch.
        """
        tasks = {node.name: node for node in services.pipeline.graph.walk() if isinstance(node, TaskNode)}
        tasks.update({node.internal_name: node for node in tasks.values()})
        for name, patch in self.patches.items():
            if name not in tasks:
                known = ", ".join(sorted(tasks))
                meant = did_you_mean(name, tasks)
                raise ConfigurationError(
                    f"executor.config.patches.{name}: not a task of the pipeline (tasks: {known}){meant}"
                )
            self._patched(tasks[name], patch)
        self.check_commands(services.pipeline.graph, self._task_to_run)

    def launch(self, unit: "Unit") -> Ended:
        """In this process: patched steps for real, the others as mocks."""
        node = unit.node
        assert isinstance(node, ExecutableNode)
        patch = self.patches.get(node.name, self.patches.get(node.internal_name))
        if patch is None or not isinstance(node, TaskNode):
            return self.run_here(unit, mock=node.task() is not None)
        return self.run_here(unit, self._patched(node, patch))

    def _task_to_run(self, node: ExecutableNode) -> Optional["BaseTaskType"]:
        patch = self.patches.get(node.name, self.patches.get(node.internal_name))
        if patch is None or not isinstance(node, TaskNode):
            return node.task()
        return self._patched(node, patch).task()

    @staticmethod
    def _patched(node: TaskNode, patch: Dict[str, Any]) -> TaskNode:
        """The node with its task rebuilt from its own config overlaid by the patch."""
        from magnus.plugins import load_plugin

        task = node.executable
        # defaults left out: a patch may change the task type, whose defaults then apply
        config = {"command_type": task.task_type, **task.model_dump(exclude_defaults=True), **patch}
        command_type = config.pop("command_type")
        try:
            executable = load_plugin("tasks", command_type)(**config)
        except Exception as exc:
            raise ConfigurationError(f"executor.config.patches.{node.name}: {exc}") from exc
        return node.model_copy(update={"executable": executable})

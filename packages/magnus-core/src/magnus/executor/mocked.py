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

from typing import Any, ClassVar, Dict

from pydantic import Field

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import BaseExecutor
from magnus.nodes.base import BaseNode
from magnus.nodes.task import TaskNode


class MockedExecutor(BaseExecutor):
    """A dry run: the graph, parameters, routing and run log are real; task commands are not run."""

    service_name: ClassVar[str] = "mocked"

    patches: Dict[str, Dict[str, Any]] = Field(
        default_factory=dict,
        description="Steps (by name) whose task runs for real, with these fields replacing the task's own "
        "(command, command_type, ...). Every other task passes without running.",
    )

    def prepare_for_graph_execution(self) -> None:
        """Refuse patches of steps that do not exist or are not tasks, before anything runs."""
        dag = self._context.dag
        if dag is not None:
            tasks = {node.name: node for node in dag.walk() if isinstance(node, TaskNode)}
            tasks.update({node.internal_name: node for node in tasks.values()})
            for name, patch in self.patches.items():
                if name not in tasks:
                    known = ", ".join(sorted(tasks))
                    raise ConfigurationError(
                        f"executor.config.patches.{name}: not a task of the pipeline (tasks: {known})"
                    )
                self._patched(tasks[name], patch)
        super().prepare_for_graph_execution()

    def execute_node(self, node: BaseNode, map_variable: defaults.TypeMapVariable = None, mock: bool = False) -> None:
        if not isinstance(node, TaskNode):
            super().execute_node(node, map_variable, mock)
            return
        patch = self.patches.get(node.name, self.patches.get(node.internal_name))
        if patch is None:
            super().execute_node(node, map_variable, mock=True)
            return
        super().execute_node(self._patched(node, patch), map_variable, mock)

    @staticmethod
    def _patched(node: TaskNode, patch: Dict[str, Any]) -> TaskNode:
        """The node with its task rebuilt from its own config overlaid by the patch."""
        from magnus.plugins import load_plugin

        config = {"command_type": node.executable.task_type, **node.executable.model_dump(), **patch}
        command_type = config.pop("command_type")
        try:
            executable = load_plugin("tasks", command_type)(**config)
        except Exception as exc:
            raise ConfigurationError(f"executor.config.patches.{node.name}: {exc}") from exc
        return node.model_copy(update={"executable": executable})

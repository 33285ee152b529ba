"""The executor contract: where a pipeline's steps run.

Two ways to run a pipeline, two base classes:

- :class:`WalkingExecutor`: magnus walks the graph in this process (the :class:`Orchestrator`)
  and the executor decides where each step runs (:meth:`~WalkingExecutor.run_step`: here, in a
  container, as a SLURM job) and how a composite's branches are scheduled
  (:meth:`~WalkingExecutor.run_branches`: in turn, in a pool of workers, as concurrent jobs).
- :class:`BaseExecutor` itself, for executors that hand the whole pipeline to an external engine
  (Argo): :meth:`~BaseExecutor.execute_pipeline` renders or submits it and returns ``TRIGGERED``.

A step run in another process is started from a :class:`~magnus.runtime.request.StepRequest`,
never from a command line an executor assembles.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Optional, Sequence

from magnus import defaults
from magnus.errors import ConfigurationError, TaskFailedError, UserInputError
from magnus.runtime.orchestrator import Orchestrator
from magnus.runtime.request import StepRequest
from magnus.service import BaseService

if TYPE_CHECKING:
    from magnus.datastore.models import StepLog
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode, ExecutableNode
    from magnus.nodes.composite import BranchRun
    from magnus.runtime.services import RunServices
    from magnus.tasks.base import BaseTaskType


class BaseExecutor(BaseService):
    """Runs a pipeline, or hands it to an engine that does.

    ``runs_steps_elsewhere``: steps run in other processes than the one the run starts in, so
    every service must be shared between processes (and, for ``local_paths``, the folders seen
    there at the same paths).

    ``engine_names_runs``: the engine the run is handed to gives each run its id (Argo's workflow
    uid), so no free id is looked up in the run log store when the run is composed: rendering a
    workflow needs no access to a store only the cluster can reach.
    """

    service_type: ClassVar[str] = "executor"
    runs_steps_elsewhere: ClassVar[bool] = False
    engine_names_runs: ClassVar[bool] = False

    def check(self, services: "RunServices") -> None:
        """Refuse, before the run log exists or anything runs, what cannot work (images, overrides).

        Raises:
            ConfigurationError: the configuration cannot run this pipeline.
        """

    @abstractmethod
    def execute_pipeline(self, services: "RunServices") -> str:
        """Run the whole pipeline and return the run's final status, or ``TRIGGERED`` once handed off.

        A run handed off leaves its run log to the engine's processes.
        """

    # ---- helpers for checks ----------------------------------------------------------------------------
    def check_commands(
        self, graph: "Graph", task_of: Optional[Callable[["ExecutableNode"], Optional["BaseTaskType"]]] = None
    ) -> None:
        """Refuse a command that cannot run here, for every step of ``graph``, branches included.

        Each task type decides what it can check without running anything
        ([`BaseTaskType.check`][magnus.tasks.base.BaseTaskType.check]: a python function is imported, once for
        the run). ``task_of`` gives the task a step will run (a mocked run's patch), by default
        its own.

        Raises:
            UserInputError: one line naming the step, what is wrong and the working folder.
        """
        from magnus.nodes.base import ExecutableNode

        for node in graph.walk():
            if not isinstance(node, ExecutableNode):
                continue
            task = task_of(node) if task_of else node.task()
            if task is None:
                continue
            try:
                task.check()
            except TaskFailedError as exc:
                step = node.internal_name.replace(defaults.MAP_PLACEHOLDER, "*")  # any iteration of a map
                raise UserInputError(f"step '{step}': {exc} (working folder {os.getcwd()})") from exc

    # ---- helpers for executors whose steps run in other processes ------------------------------------
    def check_override_names(self, graph: "Graph", defined: Iterable[str]) -> None:
        """Refuse steps that pick an override block this executor's config does not define."""
        known = sorted(defined)
        for node in graph.walk():
            chosen = node.override_name(self.service_name)
            if chosen and chosen not in known:
                raise ConfigurationError(
                    f"step '{node.internal_name}': overrides.{self.service_name} '{chosen}' is not in "
                    f"executor.config.overrides (defined: {', '.join(known) or 'none'})"
                )

    def step_configuration_file(self, services: "RunServices") -> str:
        """The configuration file processes running single steps must read (they cannot do without)."""
        path = services.options.configuration_file
        if not path:
            raise ConfigurationError(
                f"executor {self.service_name}: the processes running the steps need the configuration file: "
                "pass it with -c"
            )
        return path

    def step_pipeline_file(self, services: "RunServices", written_to: Path) -> str:
        """The YAML pipeline processes running single steps read.

        A pipeline given in YAML is used as it is; one built with the SDK is written to
        ``written_to`` (which those processes must be able to read).
        """
        pipeline_file = services.options.pipeline_file
        if pipeline_file.endswith((".yaml", ".yml")):
            return pipeline_file
        import yaml

        from magnus.atomic import write_atomically

        assert services.pipeline is not None
        document = yaml.safe_dump({"dag": dict(services.pipeline.definition)}, sort_keys=False).encode()
        write_atomically(written_to, document, durable=False)
        return str(written_to)

    def step_request(
        self,
        services: "RunServices",
        node: "BaseNode",
        map_variable: defaults.TypeMapVariable,
        *,
        pipeline_file: str,
        fan: str = "",
    ) -> StepRequest:
        """The launch request of ``node`` at this map position, for this run and configuration."""
        options = services.options
        return StepRequest.for_node(
            node,
            map_variable,
            run_id=services.run_id,
            pipeline_file=pipeline_file,
            configuration_file=self.step_configuration_file(services),
            parameters_file=options.parameters_file,
            tag=options.tag,
            fan=fan,
        )


class WalkingExecutor(BaseExecutor):
    """An executor under which magnus walks the graph here and launches each step.

    Subclasses say where a step runs ([`run_step`][]) and may say how branches are scheduled
    ([`run_branches`][]; in turn by default).
    """

    def execute_pipeline(self, services: "RunServices") -> str:
        return Orchestrator(services, launcher=self).run()

    @abstractmethod
    def run_step(
        self,
        services: "RunServices",
        node: "ExecutableNode",
        map_variable: defaults.TypeMapVariable,
        step_log: "StepLog",
    ) -> Optional["StepLog"]:
        """Run one executable step and wait for it.

        ``step_log`` is the step's log as recorded (PROCESSING). Return the final step log when
        the step ran in this process (the step runner returns it), or
        None when it ran elsewhere and wrote its log to the store, where the walk reads it.
        """

    def run_branches(
        self, services: "RunServices", runs: Sequence["BranchRun"], run_branch: Callable[["BranchRun"], str]
    ) -> None:
        """Run every branch of a composite step with ``run_branch`` before returning; in turn by default."""
        for run in runs:
            run_branch(run)

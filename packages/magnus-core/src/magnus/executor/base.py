"""The executor contract: where a run's units are done.

Two kinds of executor, two base classes (dagster's step-delegating executor is the model):

- :class:`StepHandlerExecutor`: the engine runs units one at a time. magnus walks the run's plan
  in this process (:class:`~magnus.runtime.orchestrator.Orchestrator`) and the executor is its
  :class:`~magnus.runtime.handler.StepHandler`: it launches a unit where its engine runs it (this
  process, a forked worker, a container, a SLURM job), polls the units in flight, cancels them.
- :class:`PlanRenderer`: the engine takes the whole pipeline (Argo). The executor renders the
  plan (:mod:`magnus.runtime.plan`) for it, and the engine's processes do each unit from its
  launch request.

Either way a unit done in another process starts from a launch request
(:meth:`~magnus.runtime.units.Unit.request`), never from a command line an executor assembles.
What a run needs before it starts is checked here, once: the reach of the services against the
executor's (:meth:`BaseExecutor.check_reach`), the configuration file steps read elsewhere, the
commands of the steps, the override blocks steps pick.
"""

from __future__ import annotations

import dataclasses
import os
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, TypeVar, Union

from magnus import defaults
from magnus.errors import ConfigurationError, TaskFailedError, UserInputError
from magnus.reach import Reach
from magnus.runtime.handler import Ended, Handle
from magnus.service import BaseService

if TYPE_CHECKING:
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode, ExecutableNode
    from magnus.runtime.plan import Plan
    from magnus.runtime.services import RunOptions, RunServices
    from magnus.runtime.units import Unit
    from magnus.tasks.base import BaseTaskType

Override = TypeVar("Override")


class BaseExecutor(BaseService):
    """Runs a run's units, or hands its plan to an engine that does.

    ``runs_steps_elsewhere``: steps run in other processes than the one the run starts in, which
    read the configuration file and the pipeline from files (a pipeline built with the SDK is
    written to one for them).

    ``engine_names_runs``: the engine the run is handed to gives each run its id (Argo's workflow
    uid), so no free id is looked up in the run log store when the run is composed: rendering a
    workflow needs no access to a store only the cluster can reach.
    """

    service_type: ClassVar[str] = "executor"
    runs_steps_elsewhere: ClassVar[bool] = False
    engine_names_runs: ClassVar[bool] = False

    # ---- before anything runs ------------------------------------------------------------------------
    def needed_reach(self) -> Reach:
        """How far the services' state must reach for the processes doing units to see it."""
        return Reach.MACHINE if self.runs_steps_elsewhere else Reach.PROCESS

    def folders_problem(self, folders: Sequence[str]) -> str:
        """For a service keeping its state in ``folders`` of this machine, when this executor needs more:
        '' when the processes doing units see those folders (a shared file system, a mounted volume),
        else why they do not."""
        return ""

    def reach_fix(self) -> str:
        """What to configure instead of a service that does not reach far enough."""
        if self.needed_reach() == Reach.MACHINE:
            return "use one keeping its state in folders (run_log_store: file-system, chunked-fs or db)"
        return (
            "use one shared between hosts (run_log_store: db; catalog: fsspec on an object store) or one "
            "keeping its state in folders the steps see"
        )

    def check_reach(self, services: "RunServices") -> None:
        """Refuse a service whose state does not reach the processes doing the run's units.

        Raises:
            ConfigurationError: one line naming the service, where its state is, and the fix.
        """
        needed = self.needed_reach()
        for kind, service in services.services().items():
            reach = service.reach()
            if reach >= needed:
                continue
            folders = service.local_paths()
            if reach == Reach.MACHINE and folders:
                problem = self.folders_problem(folders)
                if not problem:
                    continue
                raise ConfigurationError(f"{kind} '{service.service_name}': {problem}")
            where = f"{reach.where()}" + (f" (folder {', '.join(folders)})" if folders else "")
            raise ConfigurationError(
                f"{kind} '{service.service_name}' keeps its state {where}, but executor '{self.service_name}' "
                f"runs steps {self.where_steps_run()}: {self.reach_fix()}"
            )

    def where_steps_run(self) -> str:
        """Where the units run, as a person reads it (for the reach check's message)."""
        return "in other processes" if self.needed_reach() == Reach.MACHINE else "on other hosts"

    def check(self, services: "RunServices") -> None:
        """Refuse, before the run log exists or anything runs, what cannot work (images, overrides).

        Raises:
            ConfigurationError: the configuration cannot run this pipeline.
        """

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

    def check_override_names(self, graph: "Graph", defined: Mapping[str, Any]) -> None:
        """Refuse steps that pick an override block this executor's config does not define."""
        known = sorted(defined)
        for node in graph.walk():
            chosen = node.override_name(self.service_name)
            if chosen and chosen not in known:
                raise ConfigurationError(
                    f"step '{node.internal_name}': overrides.{self.service_name} '{chosen}' is not in "
                    f"executor.config.overrides (defined: {', '.join(known) or 'none'})"
                )

    def override_of(self, node: "BaseNode", overrides: Mapping[str, Override]) -> Optional[Override]:
        """The override block ``node`` picks for this executor (``overrides: {<executor>: name}``), if any."""
        chosen = node.override_name(self.service_name)
        return overrides[chosen] if chosen else None

    # ---- the run --------------------------------------------------------------------------------------
    @abstractmethod
    def execute_pipeline(self, services: "RunServices") -> str:
        """Run the whole pipeline and return the run's final status, or ``TRIGGERED`` once handed off.

        A run handed off leaves its run log to the engine's processes.
        """

    def reference(self, services: "RunServices", pipeline_written_to: Optional[Path] = None) -> "RunOptions":
        """What the launch requests of the run carry: the run, and the files its processes read.

        Steps run elsewhere need the configuration file, and a YAML pipeline: one built with the SDK
        is written to ``pipeline_written_to`` (``.magnus/<run_id>-pipeline.yaml`` by default).

        Raises:
            ConfigurationError: steps run elsewhere but no configuration file was given.
        """
        options = services.options
        pipeline_file = options.pipeline_file
        if self.runs_steps_elsewhere:
            self.step_configuration_file(services)
            if not pipeline_file.endswith((".yaml", ".yml")):
                written_to = pipeline_written_to or Path(".magnus") / f"{services.run_id}-pipeline.yaml"
                pipeline_file = _written_pipeline(services, written_to)
        return dataclasses.replace(options, pipeline_file=pipeline_file)

    def step_configuration_file(self, services: "RunServices") -> str:
        """The configuration file processes running single steps must read (they cannot do without).

        Raises:
            ConfigurationError: none was given.
        """
        path = services.options.configuration_file
        if not path:
            raise ConfigurationError(
                f"executor {self.service_name}: the processes running the steps need the configuration file: "
                "pass it with -c"
            )
        return path


class StepHandlerExecutor(BaseExecutor):
    """An executor whose engine runs units one at a time: core walks the plan, this launches units.

    A subclass implements [`launch`][], [`poll`][] and [`cancel`][] (see
    `magnus.runtime.handler.StepHandler`); [`capacity`][] says how many units may be in
    flight at once (one by default), and an engine that walks a composite's branches itself, each
    as a whole (a SLURM job array), says so with [`launches_branches`][].
    """

    def capacity(self) -> int:
        """Units in flight at once; 0 for as many as are ready."""
        return 1

    def launches_branches(self, composite: "Unit", count: int) -> bool:
        """Whether the engine walks the ``count`` branches of ``composite`` itself, each as a whole (all at
        once by [`launch_branches`][] when the capacity is 0, else one by one by [`launch`][])."""
        return False

    def launch_branches(self, units: Sequence["Unit"]) -> List[Handle]:
        """Start the branch units of one composite (when [`launches_branches`][]); a handle each."""
        raise NotImplementedError(f"executor {self.service_name} does not launch branches")

    @abstractmethod
    def launch(self, unit: "Unit") -> Union[Handle, Ended]:
        """Start one unit (a step, or a branch the engine walks whole); a handle to poll, or how it ended when it
        ran to its end in this call."""

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """The handles that ended, waiting up to ``timeout`` seconds for one; one query for all of them."""
        raise NotImplementedError(f"executor {self.service_name} hands out no handles to poll")

    def cancel(self, handles: Sequence[Handle]) -> Optional[Mapping[Handle, Ended]]:
        """Stop the units of ``handles`` (Ctrl-C, SIGTERM); return once they stopped or were told to,
        with the engine's account of how each ended where it has one."""
        return None

    def execute_pipeline(self, services: "RunServices") -> str:
        from magnus.runtime.orchestrator import Orchestrator

        return Orchestrator(services, self, self.reference(services)).run()

    def run_here(self, unit: "Unit", node: Optional["ExecutableNode"] = None, mock: bool = False) -> Ended:
        """Run a step unit in this process (``node`` in place of its own: a mocked run's patch); how it ended."""
        from magnus.nodes.base import ExecutableNode
        from magnus.runtime.step import StepRunner

        node = node or unit.node  # type: ignore[assignment]
        assert isinstance(node, ExecutableNode), f"unit {unit.planned.id} is not a step"
        step_log = StepRunner(unit.run.services).run(node, unit.map_variable, unit.step_log, mock, unit.retry)
        return Ended(step_log.status, step_log.message, mocked=mock)


class PlanRenderer(BaseExecutor):
    """An executor whose engine takes the whole pipeline: it renders the plan, no unit runs here."""

    runs_steps_elsewhere: ClassVar[bool] = True

    @abstractmethod
    def render(self, plan: "Plan", services: "RunServices") -> str:
        """Render (and, when configured, submit) the plan; ``TRIGGERED``."""

    def execute_pipeline(self, services: "RunServices") -> str:
        return self.render(services.pipeline.plan, services)


def walkable_whole(composite: "BaseNode", executor: str) -> bool:
    """Whether an engine may walk each branch of ``composite`` whole, in one of its processes, changing
    nothing but the cost: neither the composite nor a step of its branches picks an override of
    ``executor`` (resources or an image of its own), no step has retries (a step is launched again
    after its process died as a unit of its own) and no step is a composite (whose branches the
    engine spreads). A Ray task or a Batch job then walks a map item as ``magnus execute_branch``
    does, and the walk records nothing per item."""
    from magnus.nodes.base import ExecutableNode

    def plain(node: "BaseNode") -> bool:
        if node.is_terminal:
            return True
        if not isinstance(node, ExecutableNode) or node.is_composite:
            return False
        return not node.override_name(executor) and node.max_attempts == 1

    if composite.override_name(executor):
        return False
    return all(plain(node) for branch in composite.get_branches() for node in branch.walk())


def _written_pipeline(services: "RunServices", written_to: Path) -> str:
    """Write an SDK-built pipeline as YAML for the processes doing its units; the file's path."""
    import yaml

    from magnus.atomic import write_atomically

    document = yaml.safe_dump({"dag": dict(services.pipeline.definition)}, sort_keys=False).encode()
    write_atomically(written_to, document, durable=False)
    return str(written_to)

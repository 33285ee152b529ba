"""``executor: {type: ray, config: {address: auto, ...}}``: every step a Ray task on a Ray cluster.

The run is walked by this process, the Ray driver. Each task or stub step is one Ray task doing its
launch request in a worker process of the cluster (:mod:`magnus_executor_ray.task`): user code
never runs in the driver. The branches of parallel steps and the items of maps run side by side
across the nodes, at most ``max_concurrency`` at once (0: as many as are ready; Ray queues what
the cluster cannot run yet): a branch of plain steps is one task walking it in its worker
(:meth:`RayExecutor.launches_branches`), any other has its steps launched as they become ready.
One ``ray.wait`` reads which of the tasks in flight ended, however many there are.

A task whose worker or node died before its step recorded its end is reported with Ray's reason
(``its node ... died``), which core records as the step's FAIL (and launches again while the step
has ``max_attempts`` left); Ray itself never retries a task. Ctrl-C, or SIGTERM, cancels the
tasks in flight: the steps are interrupted as Ctrl-C would (they record it), and a task still
running after :data:`CANCEL_GRACE_SECONDS` has its worker killed.
"""

from __future__ import annotations

import collections
import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Deque, Dict, List, Optional, Sequence

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.executor.base import StepHandlerExecutor, walkable_whole
from magnus.reach import Reach
from magnus.runtime.handler import Ended, Handle
from magnus_executor_ray.batches import BatchSizer
from magnus_executor_ray.config import TaskResources
from magnus_executor_ray.connection import check_reachable, connect

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices
    from magnus.runtime.units import Unit
    from magnus_executor_ray.task import Done

logger = logging.getLogger(defaults.LOGGER_NAME)

# How long interrupted steps have to record it before their workers are killed.
CANCEL_GRACE_SECONDS = 5.0
_NODE_ID = re.compile(r"node ID: ([0-9a-f]+)")


class RayExecutor(StepHandlerExecutor, TaskResources):
    """Runs every step as a Ray task, the branches of parallel and map steps side by side across the cluster."""

    service_name: ClassVar[str] = "ray"
    runs_steps_elsewhere: ClassVar[bool] = True

    address: str = Field(
        default="auto", description="The cluster: auto, host:port, ray://host:10001, or '' for a new local Ray."
    )
    max_concurrency: int = Field(default=0, ge=0, description="Steps in flight at once (0: as many as are ready).")
    num_cpus: Optional[float] = Field(default=1, ge=0, description="CPUs a step's task holds, unless overridden.")
    runtime_env: Dict[str, Any] = Field(
        default_factory=dict, description="Ray's runtime_env of the run's tasks (env_vars, working_dir, pip, ...)."
    )
    shared_filesystem: bool = Field(
        default=False, description="Every node sees this project's folders: stores in local folders may be used."
    )
    overrides: Dict[str, TaskResources] = Field(
        default_factory=dict, description="Named resources for single steps, chosen by overrides: {ray: name}."
    )

    _remote: Any = PrivateAttr(default=None)  # the remote function doing a unit, while connected
    _folder: str = PrivateAttr(default="")
    _remote_batch: Any = PrivateAttr(default=None)  # the remote function doing a batch of branches
    _names: Dict[Any, str] = PrivateAttr(default_factory=dict)  # the unit of each task in flight
    _batches: Dict[Any, List["_Branch"]] = PrivateAttr(default_factory=dict)  # the branches of each batch in flight
    _waiting: Deque["_Group"] = PrivateAttr(default_factory=collections.deque)  # branches not submitted yet
    _sizer: BatchSizer = PrivateAttr(default_factory=BatchSizer)

    # ---- before anything runs ---------------------------------------------------------------------
    def needed_reach(self) -> Reach:
        return Reach.ANYWHERE

    def folders_problem(self, folders: Sequence[str]) -> str:
        if self.shared_filesystem:
            return ""
        return (
            f"Ray tasks may run on other nodes, which do not see {', '.join(folders)}: set "
            "executor.config.shared_filesystem: true if every node mounts it there, or use run_log_store: db "
            "and catalog: fsspec on an object store"
        )

    def reach_fix(self) -> str:
        return (
            "use run_log_store: db and catalog: fsspec on an object store (or folders every node sees, with "
            "executor.config.shared_filesystem: true)"
        )

    def where_steps_run(self) -> str:
        return "in Ray tasks on the cluster's nodes"

    def check(self, services: "RunServices") -> None:
        """Refuse unknown overrides and an address where no cluster answers."""
        self.check_override_names(services.pipeline.graph, self.overrides)
        check_reachable(self.address)
        self._folder = os.getcwd()

    def capacity(self) -> int:
        return self.max_concurrency

    # ---- the run -------------------------------------------------------------------------------------
    def execute_pipeline(self, services: "RunServices") -> str:
        """Walk the run here, connected to the cluster for as long as it lasts."""
        import ray

        from magnus_executor_ray.task import do_unit, do_units

        connected_here = connect(self.address, self.runtime_env)
        try:
            # Ray never retries a task: core decides, by the step's max_attempts, and records each death.
            self._remote = ray.remote(max_retries=0)(do_unit)
            self._remote_batch = ray.remote(max_retries=0)(do_units)
            return super().execute_pipeline(services)
        finally:
            self._remote = self._remote_batch = None
            self._names.clear()
            self._batches.clear()
            self._waiting.clear()
            if connected_here:
                ray.shutdown()

    def launches_branches(self, composite: "Unit", count: int) -> bool:
        """The branches of a map or parallel step are walked whole in workers, in batches
        (:mod:`magnus_executor_ray.batches`), when that changes nothing but the cost
        ([`walkable_whole`][magnus.executor.base.walkable_whole]): the workers record their steps
        side by side, the walk nothing per branch."""
        return count > 1 and walkable_whole(composite.node, self.service_name)

    def launch_branches(self, units: Sequence["Unit"]) -> List[Handle]:
        """Queue the branches here and submit the first batches; the others go as batches end."""
        import ray

        resources = self.merged(self.override_of(units[0].node, self.overrides))
        per_task = resources.num_cpus or 1.0
        cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
        slots = max(1, int(cpus / per_task))
        composite = units[0].node.step_log_name(units[0].map_variable)
        branches = collections.deque(_Branch(unit) for unit in units)
        group = _Group(composite, resources.task_options(), slots, branches, len(units))
        self._waiting.append(group)
        handles: List[Handle] = list(group.branches)
        self._submit_waiting()
        return handles

    def launch(self, unit: "Unit") -> Handle:
        """Submit the step (or a branch walked whole) as a Ray task with its resources (its override's, if
        it picks one)."""
        resources = self.merged(self.override_of(unit.node, self.overrides))
        task = self._remote.options(name=f"magnus {unit.name}"[:200], **resources.task_options())
        reference = task.remote(unit.request(), self._task_folder())
        self._names[reference] = unit.name
        return reference  # type: ignore[no-any-return]

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """The tasks that ended, waiting up to ``timeout`` for one: ``ray.wait`` over all of them. A batch
        that ended ends each of its branches; the next batches are submitted."""
        import ray

        references = [*self._names, *self._batches]
        if not references:
            return {}
        ready, _ = ray.wait(references, num_returns=1, timeout=timeout, fetch_local=False)
        if ready and len(references) > 1:  # and every other one that ended meanwhile
            ready, _ = ray.wait(references, num_returns=len(references), timeout=0, fetch_local=False)
        ended: Dict[Handle, Ended] = {}
        for reference in ready:
            if reference in self._batches:
                ended.update(self._batch_ended(reference, self._batches.pop(reference)))
            else:
                ended[reference] = self._ended(reference)
        self._submit_waiting()
        return ended

    def cancel(self, handles: Sequence[Handle]) -> Dict[Handle, Ended]:
        """Interrupt every task in flight (their steps record it), submit no more; kill the workers of
        those still running after :data:`CANCEL_GRACE_SECONDS`."""
        import ray

        self._waiting.clear()  # never started: core records them interrupted
        references = [*self._names, *self._batches]
        # only tasks not ended yet: cancelling one whose reply is on its way can abort Ray's driver (2.60)
        _, references = ray.wait(references, num_returns=len(references), timeout=0, fetch_local=False)
        for reference in references:
            ray.cancel(reference)
        _, running = ray.wait(references, num_returns=len(references), timeout=CANCEL_GRACE_SECONDS)
        for reference in running:
            ray.cancel(reference, force=True)
        if running:
            ray.wait(running, num_returns=len(running), timeout=CANCEL_GRACE_SECONDS)
        killed = f"its Ray task was cancelled, its worker killed after {CANCEL_GRACE_SECONDS:.0f} s"
        ended: Dict[Handle, Ended] = {}
        for reference in running:
            stopped: List[Handle] = list(self._batches.get(reference, [])) or [reference]
            ended.update((handle, Ended(reason=killed, retry=False)) for handle in stopped)
        return ended

    # ---- batches of branches -------------------------------------------------------------------------
    def _submit_waiting(self) -> None:
        """Submit batches of the waiting branches while fewer than the cluster's slots ask are in flight."""
        while self._waiting:
            group = self._waiting[0]
            if len(self._batches) >= self._sizer.in_flight(group.slots):
                return
            size = self._sizer.next_size(len(group.branches), group.slots)
            batch = [group.branches.popleft() for _ in range(size)]
            group.tasks += 1
            if not group.branches:
                self._waiting.popleft()
                logger.debug("%s: %d branches walked in %d Ray tasks", group.composite, group.count, group.tasks)
            name = f"magnus {batch[0].unit.name}" + (f" and {len(batch) - 1} more" if len(batch) > 1 else "")
            task = self._remote_batch.options(name=name[:200], **group.options)
            reference = task.remote([branch.unit.request() for branch in batch], self._task_folder())
            self._batches[reference] = list(batch)

    def _batch_ended(self, reference: Any, batch: List["_Branch"]) -> Dict[Handle, Ended]:
        """How each branch of a finished batch ended: as its unit answered, or as the batch's task did."""
        import ray
        from ray.exceptions import RayError

        try:
            answers = ray.get(reference)
        except RayError as exc:
            end = _failure(exc)
            return {handle: end for handle in batch}
        self._sizer.observe(sum(done.seconds for done in answers), len(answers))
        return {handle: _answered(done, handle.unit.name) for handle, done in zip(batch, answers, strict=True)}

    def _task_folder(self) -> str:
        return self._folder if self.shared_filesystem else ""

    def _ended(self, reference: Any) -> Ended:
        """How a finished task ended: the step's status, or Ray's account of a task that did not end well."""
        import ray
        from ray.exceptions import RayError

        name = self._names.pop(reference, "")
        try:
            done = ray.get(reference)
        except RayError as exc:
            return _failure(exc)
        return _answered(done, name)


@dataclass(eq=False)
class _Branch:
    """A branch the walk handed over: its handle, waiting to be submitted, then in its batch."""

    unit: "Unit"


@dataclass
class _Group:
    """The branches of one composite not submitted yet, and what each of their tasks asks for."""

    composite: str
    options: Dict[str, Any]
    slots: int  # the tasks of these options the cluster runs at once
    branches: Deque[_Branch]
    count: int  # branches in all
    tasks: int = 0  # tasks submitted so far


def _answered(done: "Done", name: str) -> Ended:
    """How a unit ended, as its task answered."""
    if done.problem:
        return Ended(reason=f"the Ray task of step {name} could not do it: {done.problem}", retry=False)
    if done.status == defaults.SUCCESS:
        return Ended(status=done.status)  # the unit recorded it: no need to read it back
    return Ended()  # the status and the message the unit recorded


def _failure(error: BaseException) -> Ended:
    """Ray's account of a task that did not end well."""
    from ray.exceptions import NodeDiedError, TaskCancelledError, WorkerCrashedError

    if isinstance(error, NodeDiedError):
        node = _NODE_ID.search(str(error))
        return Ended(reason=f"its Ray node {node.group(1) if node else ''} died".replace("  ", " "))
    if isinstance(error, WorkerCrashedError):
        return Ended(reason="its Ray worker process died")
    if isinstance(error, TaskCancelledError):
        return Ended(reason="its Ray task was cancelled", retry=False)
    return Ended(reason=f"its Ray task failed: {_first_line(error)}", detail=str(error)[-2000:])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

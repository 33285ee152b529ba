"""``executor: {type: ray, config: {address: auto, ...}}``: every step a Ray task on a Ray cluster.

The run is walked by this process, the Ray driver. Each task or stub step is one Ray task doing its
launch request in a worker process of the cluster (:mod:`magnus_executor_ray.task`): user code
never runs in the driver. The branches of parallel steps and the items of maps are launched as
their steps become ready, so they run side by side across the nodes, at most
``max_concurrency`` at once (0: as many as are ready; Ray queues what the cluster cannot run yet).
One ``ray.wait`` reads which of the tasks in flight ended, however many there are.

A task whose worker or node died before its step recorded its end is reported with Ray's reason
(``its node ... died``), which core records as the step's FAIL (and launches again while the step
has ``max_attempts`` left); Ray itself never retries a task. Ctrl-C, or SIGTERM, cancels the
tasks in flight: the steps are interrupted as Ctrl-C would (they record it), and a task still
running after :data:`CANCEL_GRACE_SECONDS` has its worker killed.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional, Sequence

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.executor.base import StepHandlerExecutor
from magnus.reach import Reach
from magnus.runtime.handler import Ended, Handle
from magnus_executor_ray.config import TaskResources
from magnus_executor_ray.connection import check_reachable, connect

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices
    from magnus.runtime.units import Unit

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
    _names: Dict[Any, str] = PrivateAttr(default_factory=dict)  # the step of each task in flight

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

        from magnus_executor_ray.task import do_unit

        connected_here = connect(self.address, self.runtime_env)
        try:
            # Ray never retries a task: core decides, by the step's max_attempts, and records each death.
            self._remote = ray.remote(max_retries=0)(do_unit)
            return super().execute_pipeline(services)
        finally:
            self._remote = None
            self._names.clear()
            if connected_here:
                ray.shutdown()

    def launch(self, unit: "Unit") -> Handle:
        """Submit the step as a Ray task with its resources (its override's, if it picks one)."""
        resources = self.merged(self.override_of(unit.node, self.overrides))
        folder = self._folder if self.shared_filesystem else ""
        task = self._remote.options(name=f"magnus {unit.name}"[:200], **resources.task_options())
        reference = task.remote(unit.request(), folder)
        self._names[reference] = unit.name
        return reference  # type: ignore[no-any-return]

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """The tasks that ended, waiting up to ``timeout`` for one: ``ray.wait`` over all of them."""
        import ray

        references = list(handles)
        ready, _ = ray.wait(references, num_returns=1, timeout=timeout, fetch_local=False)
        if ready and len(references) > 1:  # and every other one that ended meanwhile
            ready, _ = ray.wait(references, num_returns=len(references), timeout=0, fetch_local=False)
        return {reference: self._ended(reference) for reference in ready}

    def cancel(self, handles: Sequence[Handle]) -> Dict[Handle, Ended]:
        """Interrupt every task in flight (their steps record it); kill the workers of those still running
        after :data:`CANCEL_GRACE_SECONDS`."""
        import ray

        references = list(handles)
        for reference in references:
            ray.cancel(reference)
        _, running = ray.wait(references, num_returns=len(references), timeout=CANCEL_GRACE_SECONDS)
        for reference in running:
            ray.cancel(reference, force=True)
        if running:
            ray.wait(running, num_returns=len(running), timeout=CANCEL_GRACE_SECONDS)
        killed = f"its Ray task was cancelled, its worker killed after {CANCEL_GRACE_SECONDS:.0f} s"
        return {reference: Ended(reason=killed, retry=False) for reference in running}

    def _ended(self, reference: Any) -> Ended:
        """How a finished task ended: the step's status, or Ray's account of a task that did not end well."""
        import ray
        from ray.exceptions import NodeDiedError, RayError, TaskCancelledError, WorkerCrashedError

        name = self._names.pop(reference, "")
        try:
            done = ray.get(reference)
        except NodeDiedError as exc:
            node = _NODE_ID.search(str(exc))
            return Ended(reason=f"its Ray node {node.group(1) if node else ''} died".replace("  ", " "))
        except WorkerCrashedError:
            return Ended(reason="its Ray worker process died")
        except TaskCancelledError:
            return Ended(reason="its Ray task was cancelled", retry=False)
        except RayError as exc:
            return Ended(reason=f"its Ray task failed: {_first_line(exc)}", detail=str(exc)[-2000:])
        if done.problem:
            return Ended(reason=f"the Ray task of step {name} could not do it: {done.problem}", retry=False)
        if done.status == defaults.SUCCESS:
            return Ended(status=done.status)  # the step recorded it: no need to read it back
        return Ended()  # the status and the message the step recorded


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""``executor: {type: local}``: every step runs on this machine.

By default steps run in this process, one after another, each branch walked to its end before the
next (as in magnus 0.5.1). With ``max_workers: N`` (or magnus 0.5.1's ``enable_parallel: true``,
one worker per CPU) up to N steps run at once in forked worker processes, from the branches of
parallel steps and the items of maps at any depth: the walk stays in this process, which hands
each ready step to an idle worker (:mod:`magnus.executor.pool`). Workers write their steps to the
run log store, which must therefore be one that several processes can write (``file-system``,
``chunked-fs``, ``db``). A worker that dies mid-step (killed, ``os._exit``) fails that step only,
with its exit status; the others run on to their end.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar, Dict, Optional, Sequence, Union

from pydantic import Field, PrivateAttr

from magnus.executor.base import StepHandlerExecutor
from magnus.reach import Reach
from magnus.runtime.handler import Ended, Handle

if TYPE_CHECKING:
    from magnus.executor.pool import WorkerPool
    from magnus.runtime.services import RunServices
    from magnus.runtime.units import Unit


class LocalExecutor(StepHandlerExecutor):
    """Runs the pipeline on this machine, steps in this process or in a pool of worker processes."""

    service_name: ClassVar[str] = "local"

    max_workers: int = Field(
        default=1, ge=1, description="Worker processes running steps of branches and map items at once."
    )
    enable_parallel: bool = Field(
        default=False, description="magnus 0.5.1's switch: run branches in one worker per CPU (when max_workers is 1)."
    )

    _pool: Optional["WorkerPool"] = PrivateAttr(default=None)

    def workers(self) -> int:
        if self.max_workers > 1:
            return self.max_workers
        return os.cpu_count() or 1 if self.enable_parallel else 1

    def capacity(self) -> int:
        return self.workers()

    def needed_reach(self) -> Reach:
        """Worker processes share the services through this machine (its folders, a server)."""
        return Reach.MACHINE if self.workers() > 1 or self.runs_steps_elsewhere else Reach.PROCESS

    def reach_fix(self) -> str:
        return "use run_log_store: {type: file-system} or {type: chunked-fs}, which several processes can write"

    def where_steps_run(self) -> str:
        return "in other processes" if self.runs_steps_elsewhere else f"in {self.workers()} worker processes"

    def check(self, services: "RunServices") -> None:
        """Refuse, when steps run here, commands that cannot run."""
        if not self.runs_steps_elsewhere:
            self.check_commands(services.pipeline.graph)

    # ---- the run ------------------------------------------------------------------------------------
    def execute_pipeline(self, services: "RunServices") -> str:
        """Walk here; with workers, their pool lives as long as the run."""
        if self.workers() <= 1 or self.runs_steps_elsewhere or not hasattr(os, "fork"):
            return super().execute_pipeline(services)
        from magnus.executor.pool import WorkerPool  # only runs with workers pay for it

        self._pool = WorkerPool(self.workers())
        try:
            return super().execute_pipeline(services)
        finally:
            self._pool.close()
            self._pool = None

    def launch(self, unit: "Unit") -> Union[Handle, Ended]:
        """In a worker when there is a pool, else here, to its end."""
        if self._pool is None:
            return self.run_here(unit)
        return self._pool.launch(unit)

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        assert self._pool is not None, "only steps run in workers are polled"
        return self._pool.poll(handles, timeout)

    def cancel(self, handles: Sequence[Handle]) -> None:
        if self._pool is not None:
            self._pool.cancel()

"""``executor: {type: local}``: every step runs on this machine.

By default steps run in this process, one after another. With ``max_workers: N`` (or magnus
0.5.1's ``enable_parallel: true``, which uses one worker per CPU) the branches of a parallel step
and the iterations of a map run in N worker processes at once, at any depth: the branches of a
map inside a parallel branch (or of a parallel inside a map iteration...) are walked by the same
N workers, never more. Workers are forked from this
process, so they share the parsed pipeline and services; each writes its own steps to the run log
store, which must therefore be one that several processes can write (``file-system``,
``chunked-fs``); the walk resumes when every branch has ended and the step is settled from the
branches' statuses, exactly as when they run one after another. A worker that dies before its
branch ended (killed, ``os._exit``) fails that branch only; the others run on to their end.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, ClassVar, Optional, Sequence

from pydantic import Field

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import WalkingExecutor
from magnus.runtime.step import StepRunner

if TYPE_CHECKING:
    from magnus.datastore.models import StepLog
    from magnus.nodes.base import ExecutableNode
    from magnus.nodes.composite import BranchRun
    from magnus.runtime.services import RunServices


class LocalExecutor(WalkingExecutor):
    """Runs the pipeline on this machine, branches optionally in worker processes."""

    service_name: ClassVar[str] = "local"

    max_workers: int = Field(
        default=1, ge=1, description="Worker processes running parallel branches and map iterations at once."
    )
    enable_parallel: bool = Field(
        default=False, description="magnus 0.5.1's switch: run branches in one worker per CPU (when max_workers is 1)."
    )

    def workers(self) -> int:
        if self.max_workers > 1:
            return self.max_workers
        return os.cpu_count() or 1 if self.enable_parallel else 1

    def check(self, services: "RunServices") -> None:
        """Refuse a store workers cannot share and, when steps run here, commands that cannot run."""
        store = services.run_log_store
        if self.workers() > 1 and not store.shared_between_processes:
            raise ConfigurationError(
                f"executor.config: running branches in {self.workers()} worker processes needs a run log store "
                f"that several processes can write; '{store.service_name}' is held in one process's memory "
                "(use run_log_store: {type: file-system} or {type: chunked-fs})"
            )
        if services.pipeline is not None and not self.runs_steps_elsewhere:
            self.check_commands(services.pipeline.graph)

    def run_step(
        self,
        services: "RunServices",
        node: "ExecutableNode",
        map_variable: defaults.TypeMapVariable,
        step_log: "StepLog",
    ) -> Optional["StepLog"]:
        """In this process."""
        return StepRunner(services).run(node, map_variable, step_log)

    def run_branches(
        self, services: "RunServices", runs: Sequence["BranchRun"], run_branch: Callable[["BranchRun"], str]
    ) -> None:
        """In forked worker processes when configured, at any depth, in one pool of ``workers()`` at most.

        The outermost composite with several branches starts the pool; a worker hands the
        branches of a composite nested in its branch to that pool (see :mod:`magnus.executor.workers`).
        """
        if self.workers() <= 1 or len(runs) <= 1 or not hasattr(os, "fork"):
            super().run_branches(services, runs, run_branch)
            return
        from magnus.executor.workers import WorkerPool, in_worker, run_nested  # only runs with workers pay for it

        if in_worker():
            run_nested(runs)
            return
        WorkerPool(services, run_branch, self.workers()).run(runs)

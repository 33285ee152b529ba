"""``executor: {type: local}``: every step runs on this machine.

By default steps run in this process, one after another. With ``max_workers: N`` (or magnus
0.5.1's ``enable_parallel: true``, which uses one worker per CPU) the branches of a parallel step
and the iterations of a map run in N worker processes at once. Workers are forked from this
process, so they share the parsed pipeline and services; each writes its own steps to the run
log store, which must therefore be one that several processes can write (``file-system``,
``chunked-fs``); the walk resumes when every branch has ended and the step is settled from the
branches' statuses, exactly as when they run one after another.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, List, Optional

from pydantic import Field

from magnus.errors import ConfigurationError
from magnus.executor.base import BaseExecutor

if TYPE_CHECKING:
    from magnus.nodes.composite import BranchRun

# The branches a pool of workers is running; set before the fork so workers inherit them.
_pending: List["BranchRun"] = []
_in_worker = False


def _run_branch(index: int) -> None:
    """In a worker: run one branch, nested composites one after another (workers have no pool)."""
    global _in_worker
    _in_worker = True
    from magnus.context import current

    _, graph, map_variable = _pending[index]
    current().executor.execute_graph(graph, map_variable)


class LocalExecutor(BaseExecutor):
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

    def prepare_for_graph_execution(self) -> None:
        store = self._context.run_log_store
        if self.workers() > 1 and not store.shared_between_processes:
            raise ConfigurationError(
                f"executor.config: running branches in {self.workers()} worker processes needs a run log store "
                f"that several processes can write; '{store.service_name}' is held in one process's memory "
                "(use run_log_store: {type: file-system} or {type: chunked-fs})"
            )
        super().prepare_for_graph_execution()

    def run_branches(self, runs: List["BranchRun"]) -> None:
        workers = min(self.workers(), len(runs))
        context = _fork_context()
        if workers <= 1 or _in_worker or context is None:
            super().run_branches(runs)
            return
        global _pending
        _pending = runs
        try:
            with context.Pool(workers) as pool:
                pool.map(_run_branch, range(len(runs)), chunksize=1)
        finally:
            _pending = []


def _fork_context() -> Optional[Any]:
    """Workers are forked (they inherit the run); where fork is unavailable branches run in turn."""
    import multiprocessing  # only runs with workers pay for it

    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return None

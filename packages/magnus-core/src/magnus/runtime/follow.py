"""Following a run whose steps an engine walks, from its run log: the progress of a local run.

An engine that takes the whole pipeline (AWS Step Functions) runs every unit in its own jobs; the
process that handed the run over does not walk it, but a person still wants the lines of a local
run. :class:`RunFollower` reads the run log as the store holds it, at each :meth:`RunFollower.poll`,
and tells a :class:`~magnus.runtime.events.RunObserver` what changed since the last read: the run
started, a step of the pipeline started or ended (a composite with its branches' counts), the run
ended. Steps inside branches are counted, not told one by one, as a local run's progress does.

What is promised: each event once, in the order the run log shows them; a step's start is told
before its end even when both happened between two reads; the run's end is told once, after its
steps'. The follower writes nothing: recording a run the engine lost is the caller's.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Dict, Optional, Set

from magnus import defaults
from magnus.errors import RunLogNotFoundError
from magnus.runtime.events import RunObserver, RunStarted, StepEnded

if TYPE_CHECKING:
    from magnus.datastore.base import BaseRunLogStore
    from magnus.datastore.models import RunLog, StepLog
    from magnus.graph import Graph

# The message core records on a step reused from the run resumed (``--use-cached``).
_REUSED = "not executed: "
_ENDED = (defaults.SUCCESS, defaults.FAIL)


class RunFollower:
    """Tells ``events`` what the run ``run_id`` of ``graph`` did, as its run log in ``store`` shows it."""

    def __init__(self, store: "BaseRunLogStore", run_id: str, graph: "Graph", events: RunObserver) -> None:
        self.store = store
        self.run_id = run_id
        self.graph = graph
        self.events = events
        self.started_at = time.monotonic()
        self._started = False
        self._steps_started: Set[str] = set()
        self._steps_ended: Set[str] = set()
        self._branches_ended: Dict[str, Set[str]] = {}
        self._ended: Optional[str] = None

    def poll(self) -> Optional[str]:
        """Read the run log once and tell what changed; the run's final status once it ended (None before)."""
        if self._ended is not None:
            return self._ended
        try:
            run_log = self.store.get_run_log_by_id(self.run_id, full=True)
        except RunLogNotFoundError:
            return None  # the engine's first job has not created it yet
        if not self._started:
            self._started = True
            location = self.store.location(self.run_id)
            self.events.run_started(RunStarted(self.run_id, run_log.original_run_id or "", location, True))
        for step in run_log.steps.values():
            self._tell_step(step)
        if run_log.status in _ENDED:
            self._ended = run_log.status
            self.events.run_ended(self.run_id, run_log.status, time.monotonic() - self.started_at)
        return self._ended

    def run_log(self) -> "RunLog":
        """The run log as the store holds it now."""
        return self.store.get_run_log_by_id(self.run_id, full=True)

    def _tell_step(self, step: "StepLog") -> None:
        name = step.internal_name
        if name in self._steps_ended or step.status == defaults.CREATED:
            return
        node = self.graph.steps.get(step.name)
        if node is not None and node.is_terminal:
            return  # a run's end is told by run_ended, as a local run does
        if name not in self._steps_started:
            self._steps_started.add(name)
            self.events.step_started(name, step.step_type, None)
            if step.branches and node is not None and node.is_composite:
                dynamic = bool(getattr(node, "dynamic_branches", False))
                iterates = bool(getattr(node, "iterates", False))
                self.events.branches_started(name, len(step.branches), None, dynamic=dynamic, iterates=iterates)
        told = self._branches_ended.setdefault(name, set())
        for branch_name, branch in step.branches.items():
            if branch.status in _ENDED and branch_name not in told:
                told.add(branch_name)
                self.events.branch_ended(name, branch_name, branch.status)
        if step.status not in _ENDED:
            return
        self._steps_ended.add(name)
        if step.branches:
            failed = sum(1 for branch in step.branches.values() if branch.status != defaults.SUCCESS)
            self.events.composite_ended(name, len(step.branches), failed)
        reused = step.mock and step.message.startswith(_REUSED)
        ended = StepEnded(
            name,
            step.step_type,
            None,
            step.status,
            _seconds(step),
            step.message,
            reused=reused,
            ran_command=bool(step.attempts) and not step.mock,
        )
        self.events.step_ended(ended)


def _seconds(step: "StepLog") -> float:
    """How long a step took, from its first attempt's start to its last attempt's end (0 when unknown)."""
    if not step.attempts:
        return 0.0
    try:
        start = datetime.fromisoformat(step.attempts[0].start_time)
        end = datetime.fromisoformat(step.attempts[-1].end_time)
    except ValueError:
        return 0.0
    return max(0.0, (end - start).total_seconds())

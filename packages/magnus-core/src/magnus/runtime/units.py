"""Units of a run at their map positions, and what core records of them wherever they are done.

A :class:`Unit` is a planned unit at one map position of one run: what the orchestrator routes and
a step handler launches, and what a launch request names (:meth:`Unit.request`). What a unit
writes to the run log is written by :class:`UnitRecords`, the same code whether the unit is done
by the process walking the run or by a pod, job or task that received its request: recording a
composite with its branches (fan-out), settling it (fan-in), ending a branch, reusing a step of the
run being resumed, and recording a unit that died, or was interrupted, before recording its end.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

from magnus import defaults, supervision
from magnus.datastore.models import BranchLog, StepAttempt, StepLog
from magnus.errors import MagnusError, RunLogExistsError, StepLogNotFoundError
from magnus.map_position import position_json
from magnus.nodes.base import resolve_map_placeholders
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.runtime import plan as kinds
from magnus.runtime.step import INTERRUPTED, new_step_log
from magnus.service_failures import using
from magnus.timing import duration, now

if TYPE_CHECKING:
    from magnus.datastore.base import BaseRunLogStore
    from magnus.nodes.base import BaseNode
    from magnus.redaction import Redactor
    from magnus.runtime.plan import Plan, PlannedUnit
    from magnus.runtime.request import LaunchRequest
    from magnus.runtime.services import RunOptions, RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)
_UNFINISHED = (defaults.CREATED, defaults.PROCESSING)
# How many branches of a composite are recorded in one write (their logs are held in memory meanwhile).
FAN_OUT_BATCH = 1000


@dataclass(frozen=True)
class ActiveRun:
    """A run being walked: its services, its plan, and what its launch requests carry (the run's
    options, with the files the processes doing units read)."""

    services: "RunServices"
    plan: "Plan"
    reference: "RunOptions"


@dataclass(frozen=True, eq=False)
class Unit:
    """A planned unit at one map position of one run.

    ``retry`` counts the launches of this unit before this one (a relaunch after it died);
    ``step_log`` is the log the orchestrator recorded for a step about to run (``PROCESSING``),
    which a step run in this process completes.
    """

    planned: "PlannedUnit"
    map_variable: defaults.TypeMapVariable
    run: ActiveRun
    retry: int = 0
    step_log: Optional[StepLog] = None

    @property
    def kind(self) -> str:
        return self.planned.kind

    @property
    def node(self) -> "BaseNode":
        return self.planned.node

    @functools.cached_property
    def name(self) -> str:
        """The resolved name of what it records: its step log (its branch log, for a branch)."""
        if self.planned.kind == kinds.BRANCH:
            return resolve_map_placeholders(self.planned.id, self.map_variable)
        return self.planned.node.step_log_name(self.map_variable)

    def request(self) -> LaunchRequest:
        """The launch request doing this unit in another process."""
        from magnus.runtime.request import FanIn, FanOut, RunStep, WalkBranch  # only units run elsewhere

        run, step = self.run.reference, self.planned.node.internal_name
        position = position_json(self.map_variable)
        # what the tracker's counterpart in the launched process needs (a trace context)
        environment = tuple(sorted(self.run.services.experiment_tracker.launch_environment(self.name).items()))
        kind = self.planned.kind
        if kind == kinds.FAN_OUT:
            return FanOut(run=run, step=step, map_variable=position, environment=environment)
        if kind == kinds.FAN_IN:
            return FanIn(run=run, step=step, map_variable=position, environment=environment)
        if kind == kinds.BRANCH:
            return WalkBranch(
                run=run, step=step, map_variable=position, environment=environment, branch=self.planned.id
            )
        retry = str(self.retry) if self.retry else ""
        return RunStep(run=run, step=step, map_variable=position, environment=environment, retry=retry)


class RunLogRecords:
    """How units that did not record their own end ended: what needs only the run's store.

    A process that watched another die records it with these (a supervising process has no
    pipeline or services of the run, only its configuration).
    """

    def __init__(self, store: "BaseRunLogStore", run_id: str, redactor: "Redactor") -> None:
        self.store = store
        self.run_id = run_id
        self.redactor = redactor

    def died(self, name: str, message: str, final: bool = True) -> str:
        """A step that ended without recording itself: one more FAIL attempt saying why; FAIL when ``final``."""
        message = self.redactor.redact(message)
        step_log = self.store.get_step_log(self.run_id, name)
        step_log.attempts.append(
            StepAttempt(
                attempt_number=max([0, *(attempt.attempt_number for attempt in step_log.attempts)]) + 1,
                status=defaults.FAIL,
                start_time=now(),
                end_time=now(),
                message=message,
            )
        )
        if final:
            step_log.status, step_log.message = defaults.FAIL, message
        self.store.add_step_log(self.run_id, step_log)
        return message

    def death_seen(self, name: str, seen: str, final: bool = True) -> str:
        """A death the step's watching process recorded (its last attempt): what the engine saw of it
        (``seen``: its job, its output) added to that attempt's message; it stays the step's end when
        ``final``. The message."""
        step_log = self.store.get_step_log(self.run_id, name)
        if not step_log.attempts:
            return step_log.message
        last = step_log.attempts[-1]
        if seen:
            last.message = f"{last.message} {self.redactor.redact(seen)}".replace(" ;", ";")
        # FAIL stays when final; else it is launched again, in progress (a later death is its own)
        step_log.status = defaults.FAIL if final else defaults.PROCESSING
        step_log.message = last.message
        self.store.add_step_log(self.run_id, step_log)
        return last.message

    def branch_died(self, name: str, message: str, interrupted: bool = False) -> None:
        """A branch walked elsewhere that did not end: its unfinished steps and itself FAIL, saying why.

        ``interrupted``: the walk was interrupted; steps that recorded the interrupt say why too.
        """
        message = self.redactor.redact(message)
        branch = self.store.get_branch_log(self.run_id, name)
        for step in _unfinished(branch.steps, interrupted):
            if step.status in _UNFINISHED:
                attempt = StepAttempt(status=defaults.FAIL, start_time=now(), end_time=now(), message=message)
                step.attempts.append(attempt)
            step.status, step.message = defaults.FAIL, message
            self.store.add_step_log(self.run_id, step)
        self.store.update_branch_log_status(self.run_id, name, defaults.FAIL)

    def interrupted(self, name: str, why: str = "") -> Optional[StepLog]:
        """A step cut short by Ctrl-C: FAIL ``interrupted`` (or ``why``, the engine's account) unless it
        recorded another end; its log (None: it was never recorded)."""
        try:
            step_log = self.store.get_step_log(self.run_id, name)
        except MagnusError:
            return None
        if step_log.status in _UNFINISHED or (why and step_log.message == INTERRUPTED):
            message = self.redactor.redact(why or INTERRUPTED)
            return self.store.update_step_log_status(self.run_id, name, defaults.FAIL, message)
        return step_log

    def run_lost(self, message: str) -> None:
        """The process walking the run ended without recording its end: every step and branch still in
        progress, and the run, FAIL saying why."""
        self.unfinished_lost(message)
        self.store.update_run_log_status(self.run_id, defaults.FAIL)

    def unfinished_lost(self, message: str) -> List[str]:
        """Every step and branch still in progress FAIL, the steps saying why (``message``): what the
        processes doing them (jobs an engine killed) could not record. The steps made FAIL, by name."""
        message = self.redactor.redact(message)
        run_log = self.store.get_run_log_by_id(self.run_id)
        lost = [step.internal_name for step in _unfinished(run_log.steps)]
        for name in lost:
            self.store.update_step_log_status(self.run_id, name, defaults.FAIL, message)
        for branch in _unfinished_branches(run_log.steps):
            self.store.update_branch_log_status(self.run_id, branch, defaults.FAIL)
        return lost

    def branch_succeeded(self, name: str) -> bool:
        """Whether the branch recorded that it ended SUCCESS (False when it was never recorded)."""
        try:
            return self.store.get_branch_status(self.run_id, name) == defaults.SUCCESS
        except MagnusError:
            return False

    def branch_interrupted(self, name: str) -> None:
        """A branch cut short by Ctrl-C: FAIL (its steps say what they were doing)."""
        try:
            self.store.update_branch_log_status(self.run_id, name, defaults.FAIL)
        except MagnusError:
            logger.debug("branch %s interrupted before it was recorded", name, exc_info=True)

    def branch_statuses(self, name: str) -> Dict[str, str]:
        return self.store.get_branch_statuses(self.run_id, name)


def _unfinished(steps: Dict[str, StepLog], interrupted: bool = False) -> Iterator[StepLog]:
    """Steps still in progress (or, ``interrupted``, that recorded an interrupt), nested ones included."""
    for step in steps.values():
        if step.status in _UNFINISHED or (interrupted and step.message == INTERRUPTED):
            yield step
        for branch in step.branches.values():
            yield from _unfinished(branch.steps, interrupted)


def _unfinished_branches(steps: Dict[str, StepLog]) -> Iterator[str]:
    """The internal names of branches still in progress, nested ones included."""
    for step in steps.values():
        for name, branch in step.branches.items():
            if branch.status in _UNFINISHED:
                yield name
            yield from _unfinished_branches(branch.steps)


class UnitRecords(RunLogRecords):
    """What core writes to the run log for units, in whichever process does them."""

    def __init__(self, services: "RunServices") -> None:
        super().__init__(services.run_log_store, services.run_id, services.redactor)
        self.services = services
        self.created = False  # whether this process created the run log (and so ends the run)
        self.tracking = False  # whether the tracker's run started (and so is ended)
        self.recorded_parameters: Dict[str, Any] = {}
        # what the supervising process needs to record this one's death
        supervision.run_started(self.run_id, services.options.configuration_file)

    # ---- the run -----------------------------------------------------------------------------------
    def begin_run(self) -> None:
        """Create the run log with the initial parameters and the run config ([`start_tracking`][] next).

        The run id is claimed in the store, then in the catalog. With ``--use-cached`` the old run's
        parameters are carried over and its catalog made available, as in magnus 0.5.1.

        Raises:
            RunLogExistsError: the run id is taken; nothing was written.
            CatalogClaimedError: the catalog holds an earlier run's files under this id; the run is
                recorded FAIL before any step ran.
            ServiceError: the store or the catalog cannot be used (no bucket, unreachable, no
                credentials); recorded FAIL when the run log was made.
        """
        services = self.services
        parameters = dict(services.initial_parameters)
        if services.original_run_id:
            original = services.original_run_log
            parameters.update(original.parameters)
            if original.dag_hash and original.dag_hash != services.pipeline.dag_hash:
                logger.warning("the pipeline changed since run %s: reusing its steps by name", original.run_id)
        with using(self.store, services.redactor):
            self.store.create_run_log(
                run_id=self.run_id,
                dag_hash=services.pipeline.dag_hash,
                use_cached=bool(services.original_run_id),
                tag=services.tag,
                original_run_id=services.original_run_id,
                status=defaults.PROCESSING,
            )
        try:
            with using(services.catalog, services.redactor):
                services.catalog.claim(self.run_id)  # the run id is ours in the store: now in the catalog too
                if services.original_run_id:
                    services.catalog.sync_between_runs(services.original_run_id, self.run_id)
        except BaseException:  # refused, failed or interrupted before any step ran: the run ended
            self.store.update_run_log_status(self.run_id, defaults.FAIL)
            raise
        self.created = True
        self.recorded_parameters = services.redactor.redact_data(parameters)  # a secret's value is never recorded
        self.store.set_parameters(self.run_id, self.recorded_parameters)
        self.store.set_run_config(self.run_id, services.redactor.redact_data(dict(services.run_config)))

    def start_tracking(self) -> None:
        """Start the tracker's run, with the parameters the run began with (after [`begin_run`][])."""
        tracker = self.services.experiment_tracker
        with using(tracker, self.services.redactor):
            tracker.start_run(self.run_id, self.services.tag, self.recorded_parameters)
        self.tracking = True

    def ensure_run_log(self) -> None:
        """Begin the run unless a process of it did; of two at once, one creates it, both go on."""
        if self.store.run_log_exists(self.run_id):
            return
        try:
            self.begin_run()
        except RunLogExistsError:
            return  # another process of the run claimed it first: it records the parameters and config
        self.start_tracking()

    def end_run(self, status: str) -> None:
        """The run's final status, written once, and the tracker's run ended (when it started)."""
        self.store.update_run_log_status(self.run_id, status)
        if self.tracking:
            self.services.experiment_tracker.end_run(status)

    # ---- steps -------------------------------------------------------------------------------------
    def reused(self, node: "BaseNode", name: str) -> Optional[StepLog]:
        """With ``--use-cached``: the old run's log of this step, marked reused, when it succeeded there."""
        services = self.services
        if not services.original_run_id or node.is_terminal:
            return None
        try:
            old, _ = services.original_run_log.search_step_by_internal_name(name)
        except StepLogNotFoundError:
            return None
        if old.status != defaults.SUCCESS:
            return None
        reused = old.model_copy(deep=True)
        reused.mock = True
        reused.message = f"not executed: succeeded in run {services.original_run_id} (--use-cached)"
        return reused

    def started(self, node: "BaseNode", name: str) -> StepLog:
        """Record a step as in progress (a mark of work going on, and of a crash mid-step)."""
        step_log = new_step_log(node, name, self.services)
        step_log.status = defaults.PROCESSING
        self.store.add_step_log(self.run_id, step_log)
        return step_log

    def end_branch(self, node: "BaseNode", map_variable: defaults.TypeMapVariable) -> str:
        """A terminal node: its branch ends with ``node.ends_with`` (the run's status is written at its
        end, once); the node itself succeeded. Its status."""
        step_log = new_step_log(node, node.step_log_name(map_variable), self.services)
        attempt = StepAttempt(status=defaults.SUCCESS, start_time=now(), attempt_number=1)
        branch = node.branch_log_name(map_variable)
        if branch:
            self.store.update_branch_log_status(self.run_id, branch, node.ends_with)
            self.services.experiment_tracker.end_branch(branch, node.ends_with)
        attempt.end_time = now()
        attempt.duration = duration(attempt.start_time, attempt.end_time)
        step_log.attempts = [attempt]
        step_log.status = defaults.SUCCESS
        self.store.add_step_log(self.run_id, step_log)
        return node.ends_with

    # ---- composites ----------------------------------------------------------------------------------
    def fan_out(
        self, node: CompositeNode, map_variable: defaults.TypeMapVariable
    ) -> Tuple[StepLog, Sequence[BranchRun]]:
        """Record a composite step and the branches it is about to run (in batches of ``FAN_OUT_BATCH``);
        those branches.

        A step whose branches cannot be worked out (a map's list parameter is missing) is recorded
        FAIL, saying why, with no branch.
        """
        name = node.step_log_name(map_variable)
        step_log = new_step_log(node, name, self.services)
        try:
            parameters = self.store.get_parameters(self.run_id) if node.reads_parameters else {}
            enclosing = node.branch_log_name(map_variable)
            if node.chooses_branch and enclosing:  # what its own branch set, over what others set meanwhile
                from magnus.runtime.outputs import set_in_branch

                parameters.update(set_in_branch(self.store.get_branch_log(self.run_id, enclosing)))
            runs = node.branch_runs(parameters, map_variable)
            decision = node.decision(runs, parameters)
        except MagnusError as exc:
            step_log.status, step_log.message = defaults.FAIL, self.redactor.redact(str(exc))
            self.store.add_step_log(self.run_id, step_log)
            return step_log, []
        if node.chooses_branch:
            decision = self._branch_changed(name, runs, decision)
        step_log.status, step_log.message = defaults.PROCESSING, self.redactor.redact(decision)
        self.services.experiment_tracker.start_composite(name, [(run.name, run.map_variable) for run in runs])
        for start in range(0, max(len(runs), 1), FAN_OUT_BATCH):  # a map of 100,000 items: a batch at a time
            batch = runs[start : start + FAN_OUT_BATCH]
            branches = {run.name: BranchLog(internal_name=run.name, status=defaults.PROCESSING) for run in batch}
            # a copy each time: a store may keep what it is given
            self.store.add_step_log(self.run_id, step_log.model_copy(update={"branches": branches}))
        return step_log, runs

    def fan_in(
        self,
        node: CompositeNode,
        map_variable: defaults.TypeMapVariable,
        in_order: bool = False,
        seen: Optional[Tuple[int, List[str]]] = None,
    ) -> Tuple[StepLog, int, int]:
        """Settle a composite step from its branches: one read of their statuses, one write of its own.

        A step whose branches' outputs are merged at fan-in (a map, unless its iterations ran in
        turn in this process, ``in_order``, and it has no reducer) reads its branches' steps
        instead, and sets the parameters it combines from them, in branch order. ``seen`` is how
        the branches ended as the walking process saw them (their number, those that did not
        succeed): then nothing is read. Returns the settled log, the number of branches and of
        those that did not succeed.
        """
        settled = self._settle(node, map_variable, in_order, seen)
        self.services.experiment_tracker.end_composite(settled[0].internal_name, settled[0].status, settled[0].message)
        return settled

    def _settle(
        self,
        node: CompositeNode,
        map_variable: defaults.TypeMapVariable,
        in_order: bool,
        seen: Optional[Tuple[int, List[str]]],
    ) -> Tuple[StepLog, int, int]:
        name = node.step_log_name(map_variable)
        decided = ""
        if node.decides:  # what it decided is its message; a decision that failed has settled it
            recorded = self.store.get_step_log(self.run_id, name)
            if recorded.status == defaults.FAIL:
                return recorded, len(recorded.branches), 0
            decided = recorded.message
        if seen is not None and not node.merges_at_fan_in(in_order):
            total, failed = seen
        elif node.merges_at_fan_in(in_order):
            from magnus.runtime.outputs import branches_outputs

            step_log = self.store.get_step_log(self.run_id, name)
            statuses = {branch: log.status for branch, log in step_log.branches.items()}
            try:
                combined = node.combine_outputs(branches_outputs(step_log, node))
            except MagnusError as exc:  # a reducer of the user's that raised
                message = self.redactor.redact(str(exc))
                return self.store.update_step_log_status(self.run_id, name, defaults.FAIL, message), len(statuses), 0
            if combined:
                self.store.set_parameters(self.run_id, combined)
        else:
            statuses = self.store.get_branch_statuses(self.run_id, name)
        if seen is None or node.merges_at_fan_in(in_order):
            total, failed = len(statuses), [branch for branch, status in statuses.items() if status != defaults.SUCCESS]
        if failed:
            message = f"branches that did not succeed: {', '.join(failed)}"
            message = f"{decided}; {message}" if decided else message
            settled = self.store.update_step_log_status(self.run_id, name, defaults.FAIL, message)
        else:
            # Walked again by an engine although it succeeded in the run resumed: it says so, as when reused whole.
            reused = None if node.decides else self.reused(node, name)
            settled = self.store.update_step_log_status(
                self.run_id, name, defaults.SUCCESS, reused.message if reused else decided
            )
        return settled, total, len(failed)

    def _branch_changed(self, name: str, runs: Sequence[BranchRun], decision: str) -> str:
        """A conditional of a resumed run chose again: the decision, saying so when the branch changed."""
        if not self.services.original_run_id:
            return decision
        try:
            old, _ = self.services.original_run_log.search_step_by_internal_name(name)
        except StepLogNotFoundError:
            return decision
        taken = [run.name for run in runs]
        if not old.branches or list(old.branches) == taken:
            return decision
        before = ", ".join(old.branches)
        logger.warning(
            "step %s: the branch taken changed since run %s (%s)", name, self.services.original_run_id, before
        )
        return f"{decision} (run {self.services.original_run_id} took {before})"

    # ---- loops -------------------------------------------------------------------------------------
    def next_iteration(self, node: CompositeNode, map_variable: defaults.TypeMapVariable) -> Optional[BranchRun]:
        """A loop's latest iteration ended: the next one, recorded, or None when the loop ends.

        The loop ends when the iteration did not succeed (its fan-in fails it), when its node says
        stop (the reason becomes the step's message), or when ``break_on`` is not a boolean (the
        step FAIL, saying so). Stateless: the latest iteration is the last branch recorded, so any
        process (the walking one, an Argo pod) decides the same.
        """
        from magnus.nodes.loop import LoopNode
        from magnus.runtime.outputs import branch_outputs

        assert isinstance(node, LoopNode)
        name = node.step_log_name(map_variable)
        statuses = self.store.get_branch_statuses(self.run_id, name)
        index = len(statuses) - 1
        latest = node.iteration(index, map_variable)
        if statuses.get(latest.name) != defaults.SUCCESS:
            return None
        set_by_it = branch_outputs(self.store.get_branch_log(self.run_id, latest.name), node.branch)
        try:
            stop, why = node.after_iteration(index, set_by_it, self.store.get_parameters(self.run_id))
        except MagnusError as exc:
            self.store.update_step_log_status(self.run_id, name, defaults.FAIL, self.redactor.redact(str(exc)))
            return None
        if stop:
            self.store.update_step_log_status(self.run_id, name, defaults.PROCESSING, why)
            return None
        following = node.iteration(index + 1, map_variable)
        self.store.add_branch_log(self.run_id, BranchLog(internal_name=following.name, status=defaults.PROCESSING))
        return following

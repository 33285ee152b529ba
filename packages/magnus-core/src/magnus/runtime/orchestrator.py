"""Walking a run's plan: a loop over ready units, their statuses coming back as values.

The :class:`Orchestrator` holds the units that are ready, in depth-first order (the units of an
earlier branch before a later one's, nested work before what waits for it), and the units in
flight. Units of core's own (a composite's fan-out and fan-in, a branch's end, a step reused from
the run being resumed) are done here, at once; steps (and, where the engine walks them whole,
branches) are handed to the executor, a :class:`~magnus.runtime.handler.StepHandler`, as long as
it has room, and the loop waits on it for the next to end. Each status that comes back routes the
walk on (``next``, ``on_failure``, the fail node), a composite settles when its last branch ended,
and the run's final status is written once.

What every engine shares is done here, once: recording a unit that ended without recording
itself (a killed process, a job past its time limit) as FAIL with the engine's reason, relaunching
it while its step has attempts left, and Ctrl-C or SIGTERM: the units in flight are cancelled and
recorded ``interrupted``, with the composites and branches holding them, and the run ends FAIL.

With room for one unit at a time the walk is exactly the depth-first walk of the graph (each
branch walked to its end before the next, as magnus 0.5.1 did); with more, branches and map items
run side by side, at any depth, never more than the executor's capacity at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from magnus import defaults
from magnus.errors import UserInputError
from magnus.nodes.base import ExecutableNode, resolve_map_placeholders
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.reach import Reach
from magnus.runtime import plan as kinds
from magnus.runtime.events import RunStarted, StepEnded
from magnus.runtime.handler import Ended, Handle
from magnus.runtime.signals import sigterm_interrupts
from magnus.runtime.step import DIED_UNRECORDED, INTERRUPTED, died_before_recording
from magnus.runtime.units import ActiveRun, Unit, UnitRecords

if TYPE_CHECKING:
    from magnus.runtime.handler import StepHandler
    from magnus.runtime.plan import PlannedUnit
    from magnus.runtime.services import RunOptions, RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)
# Longest wait for an engine to report an end before the loop looks again.
POLL_SECONDS = 1.0
_Key = Tuple[int, ...]


@dataclass(eq=False)
class _Walk:
    """A branch being walked (the run itself at the top), one unit after another.

    ``key`` orders its units among all ready ones (depth first); ``join`` is the composite
    waiting for it (None for the walk a process started with).
    """

    name: str
    key: _Key
    map_variable: defaults.TypeMapVariable
    join: Optional["_Join"] = None
    index: int = 0  # its place among the branches of its composite


@dataclass(eq=False)
class _Join:
    """A composite step fanned out, waiting for its branches; branches start as there is room."""

    unit: Unit
    walk: _Walk
    runs: Sequence[BranchRun]
    started: float
    ordered: bool  # its branches run one after another, in their order
    whole: bool = False  # the engine walks each branch as one unit
    next_branch: int = 0
    pending: int = 0
    walks: List[_Walk] = field(default_factory=list)
    failed: List[Tuple[int, str]] = field(default_factory=list)  # branches that ended other than SUCCESS


@dataclass(eq=False)
class _Flight:
    """A unit handed to the executor: where it belongs and since when."""

    unit: Unit
    walk: _Walk
    started: float
    launches: int = 1


class Decision(NamedTuple):
    """Why a step of a resumed run was reused or run, as decided by the walk."""

    step: str
    reused: bool
    why: str


class Orchestrator:
    """Walks one run's plan in this process, units launched through ``handler``.

    ``reference`` is what launch requests carry (the files the processes doing units read);
    by default the run's own options.
    """

    def __init__(
        self, services: "RunServices", handler: "StepHandler", reference: Optional["RunOptions"] = None
    ) -> None:
        self.services = services
        self.handler = handler
        self.active = ActiveRun(services, services.pipeline.plan, reference or services.options)
        self.records = UnitRecords(services)
        self.events = services.events
        services.parameter_variables  # noqa: B018 - made here, so workers forked later share its files
        self.decisions: List[Decision] = []
        self._core: List[Tuple[_Key, int, Unit, _Walk]] = []  # units done here, at once
        self._launch: List[Tuple[_Key, int, Union[Unit, _Join], _Walk]] = []  # steps, and branches to start
        self._order = itertools.count()
        self._in_flight: Dict[Handle, _Flight] = {}
        self._launching: Optional[_Flight] = None
        self._joins: Dict[str, _Join] = {}  # composites fanned out, by their step's name
        self._reached: Optional[str] = None

    # ---- the run -----------------------------------------------------------------------------------
    def run(self) -> str:
        """Create the run log, walk the plan, write the final status once; return it.

        The final status is written even when the walk is interrupted, so the run log always says
        how the run ended: SUCCESS only when the pipeline reached its success node.
        """
        services = self.services
        reached = defaults.FAIL
        started = time.monotonic()
        try:
            with sigterm_interrupts():
                self.records.begin_run()
                logger.info("run %s: walking %s", services.run_id, services.options.pipeline_file or "the pipeline")
                store = services.run_log_store
                location, kept = store.location(services.run_id), store.reach() > Reach.PROCESS
                self.events.run_started(RunStarted(services.run_id, services.original_run_id, location, kept))
                self.records.start_tracking()  # a tracker failing here ends a run that started
                reached = self._walk(_Walk("", (), None), self.active.plan.start)
        finally:
            status = defaults.SUCCESS if reached == defaults.SUCCESS else defaults.FAIL
            if self.records.created:  # a run id another run holds is not this run's to end
                self.records.end_run(status)
                logger.info("run %s ended %s", services.run_id, status)
                self.events.run_ended(services.run_id, status, time.monotonic() - started)
        return status

    def walk_branch(self, node: "CompositeNode", map_variable: defaults.TypeMapVariable, branch: str) -> str:
        """Walk ``node``'s branch named ``branch`` (as in the pipeline) at ``map_variable`` here.

        What ``magnus execute_branch`` does (a SLURM array task walks one map item): the process
        walking the run fanned the step out already (the branch logs exist).

        Raises:
            UserInputError: ``node`` has no such branch.
        """
        graphs = {graph.internal_branch_name: graph for graph in node.get_branches()}
        if branch not in graphs:
            known = ", ".join(graphs) or "none"
            raise UserInputError(f"step '{node.internal_name}' has no branch '{branch}' (known: {known})")
        name = resolve_map_placeholders(branch, map_variable)
        with sigterm_interrupts():
            status = self._walk(_Walk(name, (), map_variable), self.active.plan.entry(graphs[branch]))
        self.events.branch_ended(node.step_log_name(map_variable), name, status)
        return status

    # ---- the loop ----------------------------------------------------------------------------------
    def _walk(self, walk: _Walk, first: "PlannedUnit") -> str:
        """Do every unit from ``first`` until ``walk`` reaches its end; the status it ended with.

        Whatever stops the walk early (Ctrl-C, an engine that cannot go on) stops what is in flight.
        """
        self._ready(first, walk)
        try:
            while self._core or self._launch or self._in_flight:
                if not self._start_next():
                    self._wait()
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except BaseException:
            if self._in_flight:
                self.handler.cancel(list(self._in_flight))
            raise
        assert self._reached is not None, "the walk ended without reaching a terminal node"
        return self._reached

    def _start_next(self) -> bool:
        """Start the first ready unit there is room for; whether there was one."""
        room = self._has_room()
        core = self._core[0] if self._core else None
        launch = self._launch[0] if self._launch and room else None
        if core is not None and (launch is None or core[:2] < launch[:2]):
            _, _, unit, walk = heapq.heappop(self._core)
            self._do(unit, walk)
            return True
        if launch is None:
            return False
        _, _, item, walk = heapq.heappop(self._launch)
        if isinstance(item, _Join):
            self._start_branch(item)
        else:
            self._start_step(item, walk)
        return True

    def _has_room(self) -> bool:
        capacity = self.handler.capacity()
        return capacity <= 0 or len(self._in_flight) < capacity

    def _wait(self) -> None:
        """Wait for units in flight to end (one poll for all of them) and take what they report."""
        ended = self.handler.poll(list(self._in_flight), POLL_SECONDS)
        for handle, end in ended.items():
            self._ended(self._in_flight.pop(handle), end)

    def _ready(self, planned: "PlannedUnit", walk: _Walk) -> None:
        unit = Unit(planned, walk.map_variable, self.active)
        if planned.kind == kinds.STEP:
            heapq.heappush(self._launch, (walk.key, next(self._order), unit, walk))
        else:
            heapq.heappush(self._core, (walk.key, next(self._order), unit, walk))

    def _step_ended(
        self, unit: Unit, status: str, seconds: float, message: str, reused: bool = False, mocked: bool = False
    ) -> None:
        node = unit.node
        ran = not (reused or mocked) and isinstance(node, ExecutableNode) and node.task() is not None
        self.events.step_ended(
            StepEnded(unit.name, node.node_type, unit.map_variable, status, seconds, message, reused, mocked, ran)
        )

    def _route(self, unit: Unit, walk: _Walk, status: str) -> None:
        planned = unit.planned
        for target in planned.on_success if status == defaults.SUCCESS else planned.on_failure:
            self._ready(self.active.plan.unit(target), walk)

    # ---- units done here -----------------------------------------------------------------------------
    def _do(self, unit: Unit, walk: _Walk) -> None:
        kind = unit.kind
        if kind == kinds.END:
            self._walk_ended(walk, self.records.end_branch(unit.node, unit.map_variable))
        elif kind == kinds.FAN_OUT:
            self._fan_out(unit, walk)
        elif kind == kinds.FAN_IN:
            self._fan_in(unit, walk)
        else:
            raise AssertionError(f"unit {unit.planned.id} of kind {kind} is not done in the walk")

    def _reused(self, unit: Unit, walk: _Walk) -> bool:
        """With ``--use-cached``: record a step that succeeded in the run resumed as reused, route on."""
        if not self.services.original_run_id:
            return False
        node = unit.node
        if isinstance(node, CompositeNode) and node.chooses_branch:  # it chooses again, its steps reused by name
            return False
        reused = self.records.reused(node, unit.name)
        if reused is None:
            self.decisions.append(Decision(unit.name, False, "it did not succeed in the run resumed"))
            return False
        self.decisions.append(Decision(unit.name, True, reused.message))
        self.services.run_log_store.add_step_log(self.services.run_id, reused)
        self._step_ended(unit, reused.status, 0.0, reused.message, reused=True)
        if unit.kind == kinds.FAN_OUT:  # a composite reused whole goes on as its fan-in would
            unit = Unit(self.active.plan.unit(kinds.fan_in_id(unit.node)), unit.map_variable, self.active)
        self._route(unit, walk, reused.status)
        return True

    def _fan_out(self, unit: Unit, walk: _Walk) -> None:
        node, name, map_variable = unit.node, unit.name, unit.map_variable
        assert isinstance(node, CompositeNode)
        if self._reused(unit, walk):
            return
        started = time.monotonic()
        self.events.step_started(name, node.node_type, map_variable)
        step_log, runs = self.records.fan_out(node, map_variable)
        if step_log.status == defaults.FAIL:
            self._step_ended(unit, defaults.FAIL, 0.0, step_log.message)
            self._route(unit, walk, defaults.FAIL)
            return
        self.events.branches_started(
            name, len(runs), map_variable, dynamic=node.dynamic_branches, iterates=node.iterates
        )
        # a loop's iterations are decided here, one after another: never handed to the engine whole
        whole = len(runs) > 0 and not node.iterates and self.handler.launches_branches(unit, len(runs))
        capacity = self.handler.capacity()
        ordered = node.iterates or capacity == 1
        join = _Join(unit, walk, list(runs) if node.iterates else runs, started, ordered=ordered, whole=whole)
        join.pending = len(runs)
        self._joins[name] = join
        if whole and capacity <= 0:  # all at once, in one submission (a job array)
            branches = [
                Unit(self.active.plan.unit(run.graph.internal_branch_name), run.map_variable, self.active)
                for run in runs
            ]
            for index, (branch, handle) in enumerate(
                zip(branches, self.handler.launch_branches(branches), strict=True)
            ):
                branch_walk = _Walk(branch.name, walk.key, branch.map_variable, join, index)
                join.walks.append(branch_walk)
                self._in_flight[handle] = _Flight(branch, branch_walk, started)
            join.next_branch = len(runs)
        elif runs:
            heapq.heappush(self._launch, ((*walk.key, 0), next(self._order), join, walk))
        else:
            self._ready_fan_in(join)

    def _start_branch(self, join: _Join) -> None:
        """Start walking the next branch of ``join`` (launch it, when the engine walks it whole); queue
        the one after."""
        index = join.next_branch
        run = join.runs[index]
        join.next_branch += 1
        key = (*join.walk.key, index)
        branch_walk = _Walk(run.name, key, run.map_variable, join, index)
        join.walks.append(branch_walk)
        if join.next_branch < len(join.runs):
            heapq.heappush(self._launch, ((*join.walk.key, index + 1), next(self._order), join, join.walk))
        if join.whole:
            branch = Unit(self.active.plan.unit(run.graph.internal_branch_name), run.map_variable, self.active)
            self._launch_unit(_Flight(branch, branch_walk, time.monotonic()))
        else:
            self._ready(self.active.plan.entry(run.graph), branch_walk)

    def _walk_ended(self, walk: _Walk, status: str) -> None:
        join = walk.join
        if join is None:
            self._reached = status
            return
        join.walks.remove(walk)
        self.events.branch_ended(join.unit.name, walk.name, status)
        if status != defaults.SUCCESS:
            join.failed.append((walk.index, walk.name))
        join.pending -= 1
        if join.pending == 0 and not self._next_iteration(join):
            self._ready_fan_in(join)

    def _next_iteration(self, join: _Join) -> bool:
        """A loop's iteration ended: start the next one when the loop goes on; whether it does."""
        node = join.unit.node
        assert isinstance(node, CompositeNode)
        if not node.iterates:
            return False
        following = self.records.next_iteration(node, join.unit.map_variable)
        if following is None:
            return False
        assert isinstance(join.runs, list), "a loop's iterations are a list, grown one at a time"
        join.runs.append(following)
        join.pending += 1
        self.events.branches_started(
            join.unit.name, len(join.runs), join.unit.map_variable, dynamic=True, iterates=True
        )
        heapq.heappush(self._launch, ((*join.walk.key, join.next_branch), next(self._order), join, join.walk))
        return True

    def _ready_fan_in(self, join: _Join) -> None:
        self._ready(self.active.plan.unit(kinds.fan_in_id(join.unit.node)), join.walk)

    def _fan_in(self, unit: Unit, walk: _Walk) -> None:
        node = unit.node
        assert isinstance(node, CompositeNode)
        join = self._joins.pop(unit.name)
        seen = (len(join.runs), [name for _, name in sorted(join.failed)])  # known here: nothing to read back
        settled, total, failed = self.records.fan_in(node, unit.map_variable, join.ordered, seen)
        self.events.composite_ended(unit.name, total, failed)
        seconds = time.monotonic() - join.started
        self._step_ended(unit, settled.status, seconds, settled.message)
        self._route(unit, walk, settled.status)

    # ---- steps, launched -----------------------------------------------------------------------------
    def _start_step(self, unit: Unit, walk: _Walk) -> None:
        if self._reused(unit, walk):
            return
        node, name = unit.node, unit.name
        step_log = self.records.started(node, name)
        self.events.step_started(name, node.node_type, unit.map_variable)
        launched = Unit(unit.planned, unit.map_variable, self.active, 0, step_log)
        self._launch_unit(_Flight(launched, walk, time.monotonic()))

    def _launch_unit(self, flight: _Flight) -> None:
        self._launching = flight
        launched = self.handler.launch(flight.unit)
        self._launching = None
        if isinstance(launched, Ended):
            self._ended(flight, launched)
        else:
            self._in_flight[launched] = flight

    def _ended(self, flight: _Flight, end: Ended) -> None:
        """A launched unit ended: record what it could not, relaunch or route on."""
        unit = flight.unit
        if unit.kind == kinds.BRANCH:
            self._branch_ended(flight, end)
            return
        status, message = end.status, end.message
        if not status:
            recorded = self.services.run_log_store.get_step_log(self.services.run_id, unit.name)
            status, message = recorded.status, recorded.message
        # the process watching the step's own recorded its death (FAIL): a death all the same
        death_recorded = not end.status and status == defaults.FAIL and died_before_recording(message)
        if status in (defaults.CREATED, defaults.PROCESSING) or death_recorded:  # it died before recording its end
            death = _death(end, DIED_UNRECORDED)
            relaunch = end.retry and flight.launches < _attempts(unit)
            if death_recorded:  # it said how it died; the engine adds what it saw
                status, message = defaults.FAIL, self.records.death_seen(unit.name, _seen(end), final=not relaunch)
            else:
                status, message = defaults.FAIL, self.records.died(unit.name, death, final=not relaunch)
            if relaunch:
                logger.warning("step %s: %s; launching it again", unit.name, death)
                relaunched = Unit(unit.planned, unit.map_variable, self.active, flight.launches)
                self._launch_unit(_Flight(relaunched, flight.walk, flight.started, flight.launches + 1))
                return
        elif status == defaults.FAIL and message == INTERRUPTED and end.reason:
            # the engine stopped it (a time limit, a preemption) and its signal reached the step: say why
            message = _death(end, "the step interrupted by its signal")
            message = self._settle_message(unit, message)
        elif status == defaults.FAIL and end.note:
            message = self._settle_message(unit, f"{message} ({end.note})")
        seconds = time.monotonic() - flight.started
        self._step_ended(unit, status, seconds, message, mocked=end.mocked)
        self._route(unit, flight.walk, status)

    def _settle_message(self, unit: Unit, message: str) -> str:
        message = self.services.redactor.redact(message)
        self.services.run_log_store.update_step_log_status(self.services.run_id, unit.name, defaults.FAIL, message)
        return message

    def _branch_ended(self, flight: _Flight, end: Ended) -> None:
        """A branch walked whole by the engine ended; one it left unfinished fails, saying why."""
        status = end.status
        if not status:
            status = self.services.run_log_store.get_branch_status(self.services.run_id, flight.unit.name)
        if status in (defaults.CREATED, defaults.PROCESSING):
            self.records.branch_died(flight.unit.name, _death(end, DIED_UNRECORDED))
            status = defaults.FAIL
        self._walk_ended(flight.walk, status)

    # ---- Ctrl-C, SIGTERM ----------------------------------------------------------------------------------
    def _interrupted(self) -> None:
        """Stop what is in flight; record it, the composites and branches holding it, FAIL ``interrupted``.

        The run's own status is written by :meth:`run` as the interrupt passes through it.
        """
        flights = list(self._in_flight.items())
        if self._launching is not None:
            flights.append((None, self._launching))
        ends: Mapping[Handle, Ended] = {}
        try:
            if self._in_flight:
                ends = self.handler.cancel(list(self._in_flight)) or {}
        finally:
            self._in_flight.clear()
            for handle, flight in flights:
                self._record_interrupted(flight, ends.get(handle))
            for join in sorted(self._joins.values(), key=lambda join: -len(join.walk.key)):  # innermost first
                self._interrupt_join(join)

    def _record_interrupted(self, flight: _Flight, end: Optional[Ended]) -> None:
        """A unit in flight the interrupt stopped: FAIL, with the engine's account of its end when it has one."""
        unit = flight.unit
        why = _death(end, "the walk was interrupted") if end is not None and end.reason else ""
        if unit.kind == kinds.BRANCH:
            if self.records.branch_succeeded(unit.name):  # it ended before the interrupt reached it (a batch's)
                self._walk_ended(flight.walk, defaults.SUCCESS)
                return
            self.records.branch_died(unit.name, why or INTERRUPTED, interrupted=True)  # as a step of its own says
        else:
            step_log = self.records.interrupted(unit.name, why)
            if step_log is not None:
                seconds = time.monotonic() - flight.started
                self._step_ended(unit, step_log.status, seconds, step_log.message)
        self._close_walk(flight.walk)

    def _close_walk(self, walk: _Walk) -> None:
        """A branch the interrupt cut short: FAIL, counted as ended by its composite."""
        join = walk.join
        if join is None or walk not in join.walks:
            return
        join.walks.remove(walk)
        self.records.branch_interrupted(walk.name)
        self.events.branch_ended(join.unit.name, walk.name, defaults.FAIL)

    def _interrupt_join(self, join: _Join) -> None:
        """A composite the interrupt cut short: its open branches, itself and its unstarted branches FAIL."""
        for walk in list(join.walks):  # walking a composite of their own, whose join was interrupted first
            self._close_walk(walk)
        name = join.unit.name
        step_log = self.records.interrupted(name)
        for branch, status in self.records.branch_statuses(name).items():
            if status == defaults.PROCESSING:
                self.records.branch_interrupted(branch)
        seconds = time.monotonic() - join.started
        message = step_log.message if step_log is not None else INTERRUPTED
        self._step_ended(join.unit, defaults.FAIL, seconds, message)
        self._close_walk(join.walk)


def _attempts(unit: Unit) -> int:
    return int(getattr(unit.node, "max_attempts", 1))


def _seen(end: Ended) -> str:
    """What the engine saw of a step whose process recorded its own death: where its output went, its end."""
    seen = f"({end.note or end.reason})" if end.note or end.reason else ""
    return f"{seen}; {end.detail}" if end.detail else seen


def _death(end: Ended, when: str) -> str:
    """What a reader of a step that died needs: how, as the engine saw it, and what may explain it."""
    message = f"{end.reason or 'its process ended'}, {when}"
    return f"{message}; {end.detail}" if end.detail else message


__all__: Sequence[str] = ["Decision", "Orchestrator", "POLL_SECONDS"]

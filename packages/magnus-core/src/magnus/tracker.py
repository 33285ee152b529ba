"""The experiment tracker contract, and several trackers used as one."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ClassVar, ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

from pydantic import PrivateAttr

from magnus import defaults
from magnus.errors import MagnusError, ServiceError
from magnus.reach import Reach
from magnus.service import BaseService
from magnus.service_failures import unusable

MapVariable = defaults.TypeMapVariable


class BaseExperimentTracker(BaseService):
    """Sends what tasks track (``magnus.track_this``) to an experiment tracking tool.

    Metrics always land in the step log's ``user_defined_metrics`` as well; a tracker only adds a
    second destination. Numbers are metrics; anything else is a parameter, keyed ``name_step``
    when tracked at a step other than 0.
    """

    service_type: ClassVar[str] = "experiment_tracker"

    @property
    def client_context(self) -> ContextManager[Any]:
        """A context in which the tracking tool's own client can be used directly."""
        return contextlib.nullcontext()

    def start_run(self, run_id: str, tag: str = "", parameters: dict[str, Any] | None = None) -> None:
        """Called once when a run starts (or resumes in another process)."""

    def end_run(self, status: str) -> None:
        """Called once when the run ends."""

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        """Called in the process running a step, before its command: until [`end_step`][],
        what is tracked belongs to step ``step`` (its resolved internal name) of run ``run_id``.

        A process running single steps of a run walked elsewhere (a container, a pod) learns the
        run here: [`start_run`][] was called in another process.
        """

    def end_step(self, step: str, status: str) -> None:
        """Called once the step ended (``SUCCESS`` or ``FAIL``)."""

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Record a numeric observation."""

    def log_parameter(self, key: str, value: Any) -> None:
        """Record a non-numeric observation or a run parameter."""

    # ---- the shape of the run, for trackers that follow it (traces); nothing by default -------------
    def describe_run(self, executor: str) -> None:
        """Called once in every process that composes the run (before any other hook): the name of
        the executor the run is configured with."""

    def start_attempt(self, step: str, attempt: int, map_variable: MapVariable = None) -> None:
        """Called in the process running ``step`` before each attempt of its command (1, 2, ...),
        after [`start_step`][]; ``map_variable`` is the step's map position (None outside maps)."""

    def end_attempt(self, step: str, attempt: int, status: str, message: str = "") -> None:
        """Called after each attempt of ``step``: its status and, for a failure, why (secrets masked)."""

    def start_composite(self, step: str, branches: Sequence[Tuple[str, MapVariable]]) -> None:
        """Called in the process fanning out composite ``step`` (a parallel, map or dag step): the
        internal names of the branches it is about to run, each with its map position."""

    def end_branch(self, branch: str, status: str) -> None:
        """Called in the process where branch ``branch`` reached its terminal node, with its status."""

    def end_composite(self, step: str, status: str, message: str = "") -> None:
        """Called in the process settling composite ``step`` from its branches, with its status."""

    def launch_environment(self, unit: str) -> Dict[str, str]:
        """Variables for the process an executor starts to do ``unit`` (a step or a branch, by its
        internal name) elsewhere: what this tracker's counterpart there needs (a trace context).
        Executors launching containers or jobs add them to the launched process's environment."""
        return {}


class DoNothingTracker(BaseExperimentTracker):
    """No tracking tool: the run log is the only record."""

    service_name: ClassVar[str] = "do-nothing"


class SeveralTrackers(BaseExperimentTracker):
    """Several experiment trackers at once (``experiment_tracker:`` a list of ``{type, config}``).

    Every hook and every ``track_this`` reaches each tracker, in the order configured. A tracker
    that fails does not keep the others from receiving the call; once each had it, the failure is
    raised as one line naming the tracker by its place and type (``experiment_tracker[2]
    'wandb': ...``), so a step tracking to an unreachable server fails, never silently.

    Not a plugin of its own: the configuration makes it from a list (a single mapping, as in
    magnus 0.5.1, stays that one tracker).
    """

    service_name: ClassVar[str] = "several"

    _trackers: List[BaseExperimentTracker] = PrivateAttr(default_factory=list)

    def __init__(self, trackers: Sequence[BaseExperimentTracker]) -> None:
        super().__init__()
        self._trackers = list(trackers)

    @property
    def trackers(self) -> List[BaseExperimentTracker]:
        """The trackers, in the order configured."""
        return list(self._trackers)

    def _each(self, call: Callable[[BaseExperimentTracker], Any]) -> None:
        """``call`` every tracker; then raise for the first that failed (naming it), if any did.

        Raises:
            ServiceError: ``experiment_tracker[N] 'type': what it said`` (and how many others failed).
        """
        failed: List[str] = []
        for position, tracker in enumerate(self._trackers, start=1):
            try:
                call(tracker)
            except Exception as exc:  # noqa: BLE001 - every tracker gets the call; the failure is raised after
                failed.append(f"experiment_tracker[{position}] '{tracker.service_name}': {_what_failed(exc)}")
        if failed:
            more = f" (and {len(failed) - 1} more tracker(s) failed)" if len(failed) > 1 else ""
            raise ServiceError(failed[0] + more)

    def reach(self) -> Reach:
        """The nearest reach among the trackers: what all of them record, that far is seen."""
        return min((tracker.reach() for tracker in self._trackers), default=Reach.ANYWHERE)

    def local_paths(self) -> List[str]:
        return [path for tracker in self._trackers for path in tracker.local_paths()]

    def state_paths(self) -> List[str]:
        return [path for tracker in self._trackers for path in tracker.state_paths()]

    def resolve_secrets(self, secret: Callable[[str], str]) -> None:
        for tracker in self._trackers:
            tracker.resolve_secrets(secret)

    def get_summary(self) -> Dict[str, Any]:
        """``{service_name: several, service_type, trackers: [each tracker's summary]}``."""
        return {
            "service_name": self.service_name,
            "service_type": self.service_type,
            "trackers": [tracker.get_summary() for tracker in self._trackers],
        }

    @property
    def client_context(self) -> ContextManager[Any]:
        """Every tracker's client context at once; yields what each yields, as a tuple."""
        return _all_entered([tracker.client_context for tracker in self._trackers])

    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        self._each(lambda tracker: tracker.start_run(run_id, tag, parameters))

    def end_run(self, status: str) -> None:
        self._each(lambda tracker: tracker.end_run(status))

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        self._each(lambda tracker: tracker.start_step(run_id, tag, step))

    def end_step(self, step: str, status: str) -> None:
        self._each(lambda tracker: tracker.end_step(step, status))

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self._each(lambda tracker: tracker.log_metric(key, value, step))

    def log_parameter(self, key: str, value: Any) -> None:
        self._each(lambda tracker: tracker.log_parameter(key, value))

    def describe_run(self, executor: str) -> None:
        self._each(lambda tracker: tracker.describe_run(executor))

    def start_attempt(self, step: str, attempt: int, map_variable: MapVariable = None) -> None:
        self._each(lambda tracker: tracker.start_attempt(step, attempt, map_variable))

    def end_attempt(self, step: str, attempt: int, status: str, message: str = "") -> None:
        self._each(lambda tracker: tracker.end_attempt(step, attempt, status, message))

    def start_composite(self, step: str, branches: Sequence[Tuple[str, MapVariable]]) -> None:
        self._each(lambda tracker: tracker.start_composite(step, branches))

    def end_branch(self, branch: str, status: str) -> None:
        self._each(lambda tracker: tracker.end_branch(branch, status))

    def end_composite(self, step: str, status: str, message: str = "") -> None:
        self._each(lambda tracker: tracker.end_composite(step, status, message))

    def launch_environment(self, unit: str) -> Dict[str, str]:
        """Every tracker's variables (a later tracker's value wins for a name both set)."""
        merged: Dict[str, str] = {}
        self._each(lambda tracker: merged.update(tracker.launch_environment(unit)))
        return merged


def _what_failed(exc: Exception) -> str:
    """What a tracker's failure says, on one line: a service failure with its fix, else its message."""
    why = unusable(exc)
    if why is None:
        said = " ".join(str(exc).split())
        # A tracker's own errors often begin with the concern's name already.
        said = said[len("experiment_tracker: ") :] if said.startswith("experiment_tracker: ") else said
        why = said if isinstance(exc, MagnusError) else f"{type(exc).__name__}: {said}"
    return why if len(why) <= 300 else why[:297] + "..."


@contextlib.contextmanager
def _all_entered(contexts: Sequence[ContextManager[Any]]) -> Iterator[Tuple[Any, ...]]:
    with contextlib.ExitStack() as stack:
        yield tuple(stack.enter_context(context) for context in contexts)

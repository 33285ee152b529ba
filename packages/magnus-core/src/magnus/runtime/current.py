"""The step running now, for the interaction API (``get_parameter``, ``track_this``, ...).

Everything else receives the run explicitly; a task's own code cannot, so the step runner sets
the current step in a :class:`contextvars.ContextVar` around the command it runs.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from magnus import defaults

if TYPE_CHECKING:
    from magnus.datastore.models import StepLog
    from magnus.runtime.services import RunServices


@dataclass
class StepMetrics:
    """Metrics tracked during one step, rendered as magnus 0.5.1's ``user_defined_metrics``."""

    values: Dict[str, Dict[int, Any]] = field(default_factory=dict)

    def record(self, name: str, value: Any, step: int) -> None:
        self.values.setdefault(name, {})[step] = value

    def as_run_log(self) -> Dict[str, Any]:
        """``{name: value}`` for a metric seen only at step 0, else ``{name: {"step": value}}``."""
        rendered: Dict[str, Any] = {}
        for name, by_step in self.values.items():
            rendered[name] = (
                by_step[0] if list(by_step) == [0] else {str(step): value for step, value in by_step.items()}
            )
        return rendered


@dataclass
class CurrentStep:
    """The run and the step a task's code runs in; what it tracks and the data it moves go here."""

    services: "RunServices"
    step_log: "StepLog"
    map_variable: defaults.TypeMapVariable = None
    metrics: StepMetrics = field(default_factory=StepMetrics)
    # The objects it put, by name: their pickled size in bytes (shown by ``magnus runs show``).
    objects: Dict[str, int] = field(default_factory=dict)


_current: ContextVar[Optional[CurrentStep]] = ContextVar("magnus_current_step", default=None)


def current_step() -> Optional[CurrentStep]:
    """The step running in this context, or None outside any step."""
    return _current.get()


@contextlib.contextmanager
def running(step: CurrentStep) -> Iterator[CurrentStep]:
    """Make ``step`` the current step within the block (restored after, nested steps included)."""
    token = _current.set(step)
    try:
        yield step
    finally:
        _current.reset(token)


def enter(step: Optional[CurrentStep]) -> None:
    """Make ``step`` current until changed again (an interactive session spans many calls)."""
    _current.set(step)


def track(step: CurrentStep, name: str, value: Any, number: int = 0) -> None:
    """Record a metric of ``step``: in its step log and, as a metric or a parameter, in the tracker.

    Numbers are metrics; anything else is a tracker parameter, keyed ``name_number`` when
    ``number`` is not 0. Secret values are masked first.
    """
    value = step.services.redactor.redact_data(value)
    step.metrics.record(name, value, number)
    tracker = step.services.experiment_tracker
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        tracker.log_metric(name, float(value), step=number)
    else:
        tracker.log_parameter(f"{name}_{number}" if number else name, value)

"""The experiment tracker contract."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, ContextManager

from magnus.service import BaseService


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


class DoNothingTracker(BaseExperimentTracker):
    """No tracking tool: the run log is the only record."""

    service_name: ClassVar[str] = "do-nothing"

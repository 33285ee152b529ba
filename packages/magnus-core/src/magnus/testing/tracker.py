"""The promises of :class:`~magnus.tracker.BaseExperimentTracker`, as tests."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

from magnus.tracker import BaseExperimentTracker


class ExperimentTrackerContract:
    """Subclass and provide a ``tracker`` fixture.

    Override :meth:`tracked` to read back what reached the tracking tool for a run (metrics by
    name, each a list of ``(step, value)``); the suite then checks it. Trackers that send nothing
    anywhere (do-nothing) leave it returning None.
    """

    @pytest.fixture
    def tracker(self) -> BaseExperimentTracker:
        raise NotImplementedError("provide a tracker fixture")

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Optional[Dict[str, Any]]:
        return None

    def test_a_run_is_tracked(self, tracker: BaseExperimentTracker) -> None:
        tracker.start_run("contract-run", tag="contract", parameters={"lr": 0.1, "name": "x"})
        tracker.log_metric("loss", 0.5, step=0)
        tracker.log_metric("loss", 0.25, step=1)
        tracker.log_parameter("model", "tree")
        tracker.end_run("SUCCESS")
        seen = self.tracked(tracker, "contract-run")
        if seen is not None:
            assert seen["loss"] == [(0, 0.5), (1, 0.25)]

    def test_client_context_is_usable(self, tracker: BaseExperimentTracker) -> None:
        with tracker.client_context:
            pass

    def test_summary_is_json(self, tracker: BaseExperimentTracker) -> None:
        import json

        json.dumps(tracker.get_summary())

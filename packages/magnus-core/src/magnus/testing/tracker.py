"""The promises of :class:`~magnus.tracker.BaseExperimentTracker`, as tests."""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar, Dict, List, Tuple

import pytest

from magnus import defaults
from magnus.tracker import BaseExperimentTracker

TAG = "contract"
# What reached the tracking tool for a run: metrics by name, each a list of (step, value).
Tracked = Dict[str, List[Tuple[int, float]]]
# The parameters that reached the tracking tool for a run: name -> value as text.
TrackedParameters = Dict[str, str]


def new_run_id() -> str:
    """A run id of its own per test: a tracking server may outlive the test session."""
    return f"contract-{uuid.uuid4().hex[:12]}"


class ExperimentTrackerContract:
    """Subclass and provide a ``tracker`` fixture, and say how to read back what it sent.

    Implement :meth:`tracked`: what reached the tracking tool for a run, as ``{metric name:
    [(step, value), ...]}`` in the order logged. Every run of the suite has the tag ``contract``
    and a run id of its own. A tracker that sends nothing anywhere (do-nothing) cannot be read
    back: it says so with ``keeps_nothing = True``, and the read-back tests are skipped (its
    hooks are still called).

    What is promised:

    - metrics logged during a run are read back in order, with their steps;
    - so are those logged between :meth:`~BaseExperimentTracker.start_step` and
      :meth:`~BaseExperimentTracker.end_step`, also from a tracker of another process of the
      run (one that never saw :meth:`~BaseExperimentTracker.start_run`);
    - the run's parameters, and what is tracked that is not a number, are read back as parameters
      (as text: ``str()`` of the value) when the suite knows how (``parameters()``; skipped when
      not implemented);
    - the tool's own client can be used in ``client_context``; the summary is JSON.
    """

    keeps_nothing: ClassVar[bool] = False

    @pytest.fixture
    def tracker(self) -> BaseExperimentTracker:
        raise NotImplementedError("provide a tracker fixture")

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        """What reached the tracking tool for run ``run_id``: ``{metric: [(step, value), ...]}``."""
        raise NotImplementedError(
            "implement tracked() to read back what reached the tracking tool, "
            "or set keeps_nothing = True for a tracker that sends nothing anywhere"
        )

    def parameters(self, tracker: BaseExperimentTracker, run_id: str) -> TrackedParameters:
        """What reached the tracking tool for run ``run_id`` as parameters: ``{name: str(value)}``.

        Optional: a suite that does not implement it skips the read-back of parameters.
        """
        raise NotImplementedError

    def another_process(self, tracker: BaseExperimentTracker) -> BaseExperimentTracker:
        """The tracker as another process of the run builds it: anew, from the same configuration."""
        return type(tracker).model_validate(tracker.model_dump())

    def read_back(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        if self.keeps_nothing:
            pytest.skip(f"{type(tracker).__name__} keeps nothing to read back (keeps_nothing = True)")
        return self.tracked(tracker, run_id)

    def test_a_run_is_tracked(self, tracker: BaseExperimentTracker) -> None:
        run_id = new_run_id()
        tracker.start_run(run_id, tag=TAG, parameters={"lr": 0.1, "name": "x"})
        tracker.log_metric("loss", 0.5, step=0)
        tracker.log_metric("loss", 0.25, step=1)
        tracker.log_parameter("model", "tree")
        tracker.end_run(defaults.SUCCESS)
        assert self.read_back(tracker, run_id)["loss"] == [(0, 0.5), (1, 0.25)]

    def test_metrics_of_a_step_are_tracked(self, tracker: BaseExperimentTracker) -> None:
        run_id = new_run_id()
        tracker.start_run(run_id, tag=TAG, parameters={"lr": 0.1})
        tracker.start_step(run_id, TAG, "train")
        tracker.log_metric("accuracy", 0.5, step=0)
        tracker.log_metric("accuracy", 0.75, step=1)
        tracker.log_parameter("model", "tree")
        tracker.end_step("train", defaults.SUCCESS)
        tracker.start_step(run_id, TAG, "evaluate")
        tracker.log_metric("precision", 0.9)
        tracker.end_step("evaluate", defaults.FAIL)
        tracker.end_run(defaults.FAIL)
        seen = self.read_back(tracker, run_id)
        assert seen["accuracy"] == [(0, 0.5), (1, 0.75)]
        assert seen["precision"] == [(0, 0.9)]

    def test_a_step_in_another_process_is_tracked(self, tracker: BaseExperimentTracker) -> None:
        run_id = new_run_id()
        tracker.start_run(run_id, tag=TAG, parameters={"lr": 0.1})
        elsewhere = self.another_process(tracker)
        for item in (1, 2):
            step = f"fan.{item}.each"
            elsewhere.start_step(run_id, TAG, step)
            elsewhere.log_metric("item_score", float(item * 10))
            elsewhere.end_step(step, defaults.SUCCESS)
        tracker.end_run(defaults.SUCCESS)
        assert sorted(self.read_back(tracker, run_id)["item_score"]) == [(0, 10.0), (0, 20.0)]

    def test_parameters_of_a_run_are_tracked(self, tracker: BaseExperimentTracker) -> None:
        run_id = new_run_id()
        tracker.start_run(run_id, tag=TAG, parameters={"lr": 0.1, "name": "x"})
        tracker.start_step(run_id, TAG, "train")
        tracker.log_parameter("model", "tree")
        tracker.end_step("train", defaults.SUCCESS)
        tracker.end_run(defaults.SUCCESS)
        if self.keeps_nothing:
            pytest.skip(f"{type(tracker).__name__} keeps nothing to read back (keeps_nothing = True)")
        try:
            seen: Dict[str, Any] = self.parameters(tracker, run_id)
        except NotImplementedError:
            pytest.skip(f"{type(self).__name__} does not read parameters back (parameters() not implemented)")
        assert {name: seen.get(name) for name in ("lr", "name", "model")} == {"lr": "0.1", "name": "x", "model": "tree"}

    def test_client_context_is_usable(self, tracker: BaseExperimentTracker) -> None:
        with tracker.client_context:
            pass

    def test_summary_is_json(self, tracker: BaseExperimentTracker) -> None:
        json.dumps(tracker.get_summary())

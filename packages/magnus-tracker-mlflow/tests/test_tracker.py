"""The MLflow tracker against a real tracking server on loopback, and a real sqlite tracking store."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from mlflow.tracking import MlflowClient

from magnus.entrypoints import execute
from magnus.testing import ExperimentTrackerContract
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.tracker import TAG, Tracked, TrackedParameters
from magnus.tracker import BaseExperimentTracker
from magnus_tracker_mlflow.tracker import PARENT_TAG, RUN_TAG, STEP_TAG, MLflowExperimentTracker

pytestmark = pytest.mark.service


def mlflow_run(client: MlflowClient, run_id: str, experiment: str = "Default") -> Any:
    """The MLflow run of magnus run ``run_id`` (not one of its steps' nested runs)."""
    found = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        filter_string=f"tags.`{RUN_TAG}` = '{run_id}'",
    )
    parents = [run for run in found if STEP_TAG not in run.data.tags]
    assert len(parents) == 1
    return parents[0]


def step_runs(client: MlflowClient, parent: Any) -> Dict[str, Any]:
    """The nested runs of ``parent`` by the step they belong to."""
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'"
    )
    return {child.data.tags[STEP_TAG]: child for child in children}


class TestAgainstTheServer(ExperimentTrackerContract):
    @pytest.fixture
    def tracker(self, mlflow_server: str) -> BaseExperimentTracker:
        return MLflowExperimentTracker(server_url=mlflow_server)

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        """Every metric of the run's MLflow run (in the experiment named by the suite's tag), read
        back from the server in the order logged: ``{name: [(step, value), ...]}``."""
        assert isinstance(tracker, MLflowExperimentTracker)
        client = MlflowClient(tracking_uri=tracker.server_url)
        run = mlflow_run(client, run_id, experiment=tracker.experiment_name or TAG)
        seen: Tracked = {}
        for name in run.data.metrics:
            history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: (m.timestamp, m.step))
            seen[name] = [(metric.step, metric.value) for metric in history]
        return seen

    def parameters(self, tracker: BaseExperimentTracker, run_id: str) -> TrackedParameters:
        """The params of the run's MLflow run and of its steps' nested runs (MLflow keeps them as text)."""
        assert isinstance(tracker, MLflowExperimentTracker)
        client = MlflowClient(tracking_uri=tracker.server_url)
        run = mlflow_run(client, run_id, experiment=tracker.experiment_name or TAG)
        seen: TrackedParameters = dict(run.data.params)
        for child in step_runs(client, run).values():
            seen.update(child.data.params)
        return seen


STEPS = """
import magnus


def train(rate: float) -> dict:
    for epoch in range(3):
        magnus.track_this(step=epoch, loss=1.0 / (epoch + 1))
    magnus.track_this(model="tree")
    return {"accuracy": 0.9}


def each(item: int) -> None:
    magnus.track_this(item_score=item * 10)


def broken() -> None:
    magnus.track_this(progress=0.5)
    raise RuntimeError("broken on purpose")


def direct() -> None:
    import mlflow
    with magnus.get_experiment_tracker_context():
        mlflow.log_metric("logged_directly", 7.0)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tracked_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "params.yaml").write_text("rate: 0.1\nitems: [1, 2]\n")
    steps = {
        "train": task("tracked_steps.train", "fan"),
        "fan": map_of("tracked_steps.each", "direct"),
        "direct": task("tracked_steps.direct"),
    }
    write_pipeline(tmp_path, steps, "train")
    return tmp_path


def run_with(project: Path, tracking_uri: str, run_id: str, tag: str = "", workers: int = 1) -> MlflowClient:
    config = {
        "executor": {"type": "local", "config": {"max_workers": workers}},
        "run_log_store": {"type": "file-system"},
        "experiment_tracker": {"type": "mlflow", "config": {"server_url": tracking_uri}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    run_log = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id=run_id, tag=tag)
    assert run_log.status == "SUCCESS", {name: step.message for name, step in run_log.steps.items()}
    assert run_log.steps["train"].user_defined_metrics == {"loss": {"0": 1.0, "1": 0.5, "2": 1 / 3}, "model": "tree"}
    return MlflowClient(tracking_uri=tracking_uri)


@pytest.mark.parametrize("workers", [1, 2], ids=["in-turn", "worker-processes"])
def test_a_pipeline_reports_to_the_server(project: Path, mlflow_server: str, workers: int) -> None:
    """Map iterations in forked workers track (and end their nested runs) from the worker."""
    run_id = f"tracked-run-{workers}"
    client = run_with(project, mlflow_server, run_id, tag="nightly", workers=workers)
    parent = mlflow_run(client, run_id, experiment="nightly")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["rate"] == "0.1"
    assert [m.value for m in client.get_metric_history(parent.info.run_id, "loss")] == [1.0, 0.5, 1 / 3]
    assert parent.data.metrics["logged_directly"] == 7.0

    by_step = step_runs(client, parent)
    assert set(by_step) == {"train", "fan.1.work", "fan.2.work"}  # "direct" tracked nothing of its own
    assert by_step["fan.2.work"].data.metrics["item_score"] == 20.0
    assert by_step["train"].data.params["model"] == "tree"
    assert {child.info.status for child in by_step.values()} == {"FINISHED"}  # each ended with its step


def test_a_sqlite_tracking_store(project: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'tracking.db'}"
    client = run_with(project, uri, "sqlite-run")
    parent = mlflow_run(client, "sqlite-run")
    assert parent.data.metrics["loss"] == pytest.approx(1 / 3)


def test_another_process_of_the_run_reuses_its_mlflow_run(mlflow_server: str) -> None:
    first = MLflowExperimentTracker(server_url=mlflow_server)
    first.start_run("shared-run", tag="shared", parameters={"a": 1})
    second = MLflowExperimentTracker(server_url=mlflow_server)
    second.start_run("shared-run", tag="shared")
    assert first._mlflow_run_id == second._mlflow_run_id


def test_a_failed_step_ends_its_nested_run_failed(project: Path, mlflow_server: str) -> None:
    steps = {
        "train": {"type": "task", "command": "tracked_steps.train", "next": "broken"},
        "broken": {"type": "task", "command": "tracked_steps.broken", "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (project / "failing.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "train", "steps": steps}}))
    config = {"experiment_tracker": {"type": "mlflow", "config": {"server_url": mlflow_server}}}
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    run_log = execute("failing.yaml", "config.yaml", "params.yaml", run_id="failing-run", tag="failing")
    assert run_log.status == "FAIL"

    client = MlflowClient(tracking_uri=mlflow_server)
    parent = mlflow_run(client, "failing-run", experiment="failing")
    assert parent.info.status == "FAILED"
    by_step = step_runs(client, parent)
    assert by_step["train"].info.status == "FINISHED"
    assert by_step["broken"].info.status == "FAILED"
    assert by_step["broken"].data.metrics["progress"] == 0.5


def test_a_process_running_one_step_learns_the_run_from_start_step(mlflow_server: str) -> None:
    walker = MLflowExperimentTracker(server_url=mlflow_server)
    walker.start_run("remote-run", tag="remote", parameters={"a": 1})

    # A container or pod: no start_run, only the step hooks.
    pod = MLflowExperimentTracker(server_url=mlflow_server)
    pod.start_step("remote-run", "remote", "fan.3.train")
    pod.log_metric("loss", 0.5, step=2)
    pod.log_parameter("model", "tree")
    pod.end_step("fan.3.train", "FAIL")
    pod.log_parameter("after_the_step", "on the run")  # between steps: the run's own

    walker.end_run("SUCCESS")
    client = MlflowClient(tracking_uri=mlflow_server)
    parent = mlflow_run(client, "remote-run", experiment="remote")
    assert parent.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(parent.info.run_id, "loss")] == [(2, 0.5)]
    assert parent.data.params["after_the_step"] == "on the run"
    child = step_runs(client, parent)["fan.3.train"]
    assert child.info.status == "FAILED"
    assert child.data.params["model"] == "tree" and child.data.metrics["loss"] == 0.5


def test_a_step_that_tracks_nothing_has_no_nested_run(mlflow_server: str) -> None:
    tracker = MLflowExperimentTracker(server_url=mlflow_server)
    tracker.start_run("quiet-run", tag="quiet")
    tracker.start_step("quiet-run", "quiet", "silent")
    tracker.end_step("silent", "SUCCESS")
    tracker.end_run("SUCCESS")
    client = MlflowClient(tracking_uri=mlflow_server)
    assert step_runs(client, mlflow_run(client, "quiet-run", experiment="quiet")) == {}


def test_parameters_of_the_run_and_its_status(mlflow_server: str) -> None:
    tracker = MLflowExperimentTracker(server_url=mlflow_server)
    tracker.start_run("params-run", tag="params", parameters={"lr": 0.1, "layers": [1, 2]})
    tracker.log_parameter("model", "tree")
    tracker.end_run("FAIL")
    client = MlflowClient(tracking_uri=mlflow_server)
    parent = mlflow_run(client, "params-run", experiment="params")
    assert parent.data.params == {"lr": "0.1", "layers": "[1, 2]", "model": "tree"}
    assert parent.info.status == "FAILED"


def test_the_client_context_inside_a_step_and_outside_any_run(mlflow_server: str) -> None:
    import mlflow

    tracker = MLflowExperimentTracker(server_url=mlflow_server)
    with tracker.client_context as active:
        assert active is None  # no run to attach to
    assert mlflow.active_run() is None

    tracker.start_step("context-run", "context", "train")  # as in a pod: no start_run here
    with tracker.client_context as active:
        assert active is not None and mlflow.active_run() is not None
        mlflow.log_metric("direct", 3.0)
    assert mlflow.active_run() is None
    tracker.end_step("train", "SUCCESS")

    client = MlflowClient(tracking_uri=mlflow_server)
    parent = mlflow_run(client, "context-run", experiment="context")
    assert parent.info.run_id == active.info.run_id
    assert parent.data.metrics["direct"] == 3.0
    assert parent.info.status == "RUNNING"  # leaving the context does not end the magnus run
    tracker.end_run("SUCCESS")
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    with tracker.client_context as active:
        assert active is None  # the run ended

"""The MLflow tracker against a real tracking server on loopback, and a real sqlite tracking store."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml
from mlflow.tracking import MlflowClient

from magnus.entrypoints import execute
from magnus.testing import ExperimentTrackerContract
from magnus.tracker import BaseExperimentTracker
from magnus_tracker_mlflow.tracker import RUN_TAG, STEP_TAG, MLflowExperimentTracker

pytestmark = pytest.mark.service


def mlflow_run(client: MlflowClient, run_id: str, experiment: str = "Default") -> Any:
    found = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        filter_string=f"tags.`{RUN_TAG}` = '{run_id}'",
    )
    parents = [run for run in found if STEP_TAG not in run.data.tags]
    assert len(parents) == 1
    return parents[0]


class TestAgainstTheServer(ExperimentTrackerContract):
    @pytest.fixture
    def tracker(self, mlflow_server: str) -> BaseExperimentTracker:
        return MLflowExperimentTracker(server_url=mlflow_server)

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Optional[Dict[str, Any]]:
        assert isinstance(tracker, MLflowExperimentTracker)
        client = MlflowClient(tracking_uri=tracker.server_url)
        run = client.search_runs(
            [client.get_experiment_by_name("contract").experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run_id}'"
        )[0]
        assert run.data.params["lr"] == "0.1" and run.data.params["model"] == "tree"
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "loss")
        return {"loss": [(metric.step, metric.value) for metric in history]}


STEPS = """
import magnus


def train(rate: float) -> dict:
    for epoch in range(3):
        magnus.track_this(step=epoch, loss=1.0 / (epoch + 1))
    magnus.track_this(model="tree")
    return {"accuracy": 0.9}


def each(item: int) -> None:
    magnus.track_this(item_score=item * 10)


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
    branch = {
        "start_at": "each",
        "steps": {
            "each": {"type": "task", "command": "tracked_steps.each", "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    steps = {
        "train": {"type": "task", "command": "tracked_steps.train", "next": "fan"},
        "fan": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "direct"},
        "direct": {"type": "task", "command": "tracked_steps.direct", "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "train", "steps": steps}}))
    return tmp_path


def run_with(project: Path, tracking_uri: str, run_id: str, tag: str = "") -> MlflowClient:
    config = {
        "run_log_store": {"type": "file-system"},
        "experiment_tracker": {"type": "mlflow", "config": {"server_url": tracking_uri}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    run_log = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id=run_id, tag=tag)
    assert run_log.status == "SUCCESS", {name: step.message for name, step in run_log.steps.items()}
    assert run_log.steps["train"].user_defined_metrics == {"loss": {"0": 1.0, "1": 0.5, "2": 1 / 3}, "model": "tree"}
    return MlflowClient(tracking_uri=tracking_uri)


def test_a_pipeline_reports_to_the_server(project: Path, mlflow_server: str) -> None:
    client = run_with(project, mlflow_server, "tracked-run", tag="nightly")
    parent = mlflow_run(client, "tracked-run", experiment="nightly")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["rate"] == "0.1"
    assert [m.value for m in client.get_metric_history(parent.info.run_id, "loss")] == [1.0, 0.5, 1 / 3]
    assert parent.data.metrics["logged_directly"] == 7.0

    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    by_step = {child.data.tags[STEP_TAG]: child for child in children}
    assert set(by_step) == {"train", "fan.1.each", "fan.2.each"}
    assert by_step["fan.2.each"].data.metrics["item_score"] == 20.0
    assert by_step["train"].data.params["model"] == "tree"


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

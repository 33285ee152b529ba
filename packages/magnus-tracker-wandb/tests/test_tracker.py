"""The W&B tracker offline, what it wrote read back with wandb's own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml
from records import read_group

from magnus.config import create_service
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing import ExperimentTrackerContract
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.plugins import installed_plugins
from magnus.testing.tracker import Tracked, TrackedParameters
from magnus.tracker import BaseExperimentTracker
from magnus_tracker_wandb.tracker import DURATION_KEY, STATUS_KEY, WandbExperimentTracker

SECRET = "wb-Secret-Value-52"


class TestWandbOffline(ExperimentTrackerContract):
    @pytest.fixture
    def tracker(self, tmp_path: Path) -> BaseExperimentTracker:
        return WandbExperimentTracker(mode="offline", dir=str(tmp_path / "wb"), project="contract")

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        """Every series of every W&B run of the group, x being magnus's step."""
        assert isinstance(tracker, WandbExperimentTracker)
        seen: Tracked = {}
        for run in read_group(Path(tracker.dir), run_id).values():
            keys = {key for row in run.history for key in row if not key.startswith("_") and key != "magnus_step"}
            for key in sorted(keys):
                seen.setdefault(key, []).extend(run.series(key))
        return seen

    def parameters(self, tracker: BaseExperimentTracker, run_id: str) -> TrackedParameters:
        assert isinstance(tracker, WandbExperimentTracker)
        seen: TrackedParameters = {}
        for run in read_group(Path(tracker.dir), run_id).values():
            seen.update({key: str(value) for key, value in run.config.items()})
        return seen


STEPS = """
import magnus


def train(rate: float) -> None:
    for epoch in range(3):
        magnus.track_this(step=epoch, loss=rate / (epoch + 1))
    magnus.track_this(step=0, accuracy=0.5)  # a second series from step 0 again
    magnus.track_this(model="tree")


def each(item: int) -> None:
    magnus.track_this(item_score=item * 10)


def leaky() -> None:
    magnus.track_this(token=magnus.get_secret("token"), score=1.0)
    print("the token is", magnus.get_secret("token"))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tracked_steps.py").write_text(STEPS)
    (tmp_path / "params.yaml").write_text("rate: 0.5\nitems: [1, 2]\n")
    write_pipeline(
        tmp_path, {"train": task("tracked_steps.train", "fan"), "fan": map_of("tracked_steps.each")}, "train"
    )
    with installed_plugins(tmp_path / "site", {"secrets": {"known": "magnus.testing.secrets:KnownSecrets"}}):
        yield tmp_path


def configure(project: Path, workers: int = 1) -> str:
    config = {
        "executor": {"type": "local", "config": {"max_workers": workers}},
        "run_log_store": {"type": "file-system"},
        "experiment_tracker": {
            "type": "wandb",
            "config": {"mode": "offline", "dir": "wb", "project": "demo", "tags": ["magnus"]},
        },
        "secrets": {"type": "known", "config": {"values": {"token": SECRET}}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return "config.yaml"


@pytest.mark.parametrize("workers", [1, 2], ids=["in-turn", "worker-processes"])
def test_a_pipeline_is_a_group_of_runs(project: Path, workers: int) -> None:
    run_log = execute("pipeline.yaml", configure(project, workers), "params.yaml", run_id="wb-run", tag="nightly")
    assert run_log.status == "SUCCESS"
    runs = read_group(project / "wb", "wb-run")
    assert set(runs) == {"wb-run", "train", "fan.1.work", "fan.2.work"}
    run = runs["wb-run"]
    assert (run.job_type, run.tags, run.exit_code) == ("run", ["magnus", "nightly"], 0)
    assert run.config == {"rate": 0.5, "items": [1, 2], "magnus.run_id": "wb-run", "magnus.tag": "nightly"}
    assert run.summary[STATUS_KEY] == "SUCCESS"
    train = runs["train"]
    assert train.job_type == "step" and train.config["model"] == "tree"
    assert train.series("loss") == [(0, 0.5), (1, 0.25), (2, 0.5 / 3)]
    assert train.series("accuracy") == [(0, 0.5)]
    assert train.summary[STATUS_KEY] == "SUCCESS" and train.summary[DURATION_KEY] >= 0
    assert runs["fan.2.work"].series("item_score") == [(0, 20)]


def test_a_failed_step_ends_its_run_failed(tmp_path: Path) -> None:
    tracker = WandbExperimentTracker(mode="offline", dir=str(tmp_path))
    tracker.start_run("failed-run", parameters={"a": 1})
    tracker.start_step("failed-run", "", "broken")
    tracker.log_metric("progress", 0.5)
    tracker.end_step("broken", "FAIL")
    tracker.end_run("FAIL")
    runs = read_group(tmp_path, "failed-run")
    assert (runs["broken"].exit_code, runs["broken"].summary[STATUS_KEY]) == (1, "FAIL")
    assert (runs["failed-run"].exit_code, runs["failed-run"].summary[STATUS_KEY]) == (1, "FAIL")


def test_a_secret_reaches_no_file_wandb_writes(project: Path) -> None:
    write_pipeline(project, {"leaky": task("tracked_steps.leaky")}, "leaky", name="leaky.yaml")
    run_log = execute("leaky.yaml", configure(project), "params.yaml", run_id="leaky-run")
    assert run_log.status == "SUCCESS"
    assert read_group(project / "wb", "leaky-run")["leaky"].config["token"] == "***"
    for path in (project / "wb").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_mode_is_checked_when_the_config_is_read() -> None:
    with pytest.raises(ConfigurationError, match=r"^c.yaml: experiment_tracker.config.mode: "):
        create_service("experiment_tracker", {"type": "wandb", "config": {"mode": "sometimes"}}, "c.yaml")

"""The TensorBoard tracker, read back with tensorboard's own event reader."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import yaml
from events import read_run
from tensorboard.plugins.hparams import api_pb2

from magnus.config import create_service
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing import ExperimentTrackerContract
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.plugins import installed_plugins
from magnus.testing.tracker import Tracked, TrackedParameters
from magnus.tracker import BaseExperimentTracker
from magnus_tracker_tensorboard.tracker import DURATION_TAG, STATUS_TAG, TensorBoardExperimentTracker

SECRET = "tb-Secret-Value-31"


class TestTensorBoard(ExperimentTrackerContract):
    @pytest.fixture
    def tracker(self, tmp_path: Path) -> BaseExperimentTracker:
        return TensorBoardExperimentTracker(log_dir=str(tmp_path / "tb"))

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        """The scalars of the run's folder and its steps' folders (the hooks' own left out)."""
        assert isinstance(tracker, TensorBoardExperimentTracker)
        seen: Tracked = {}
        for folder in read_run(Path(tracker.log_dir), run_id).values():
            for name, points in folder.scalars.items():
                if name != DURATION_TAG:
                    seen.setdefault(name, []).extend(points)
        return seen

    def parameters(self, tracker: BaseExperimentTracker, run_id: str) -> TrackedParameters:
        """The hparams of the run and the texts of the run and its steps."""
        assert isinstance(tracker, TensorBoardExperimentTracker)
        seen: TrackedParameters = {}
        for folder in read_run(Path(tracker.log_dir), run_id).values():
            seen.update({name: str(value) for name, value in folder.hparams.items()})
            seen.update({name: text for name, text in folder.texts.items() if name != STATUS_TAG})
        return seen


STEPS = """
import magnus


def train(rate: float) -> None:
    for epoch in range(3):
        magnus.track_this(step=epoch, loss=rate / (epoch + 1))
    magnus.track_this(model="tree")


def each(item: str) -> None:
    magnus.track_this(item_length=len(item))


def leaky() -> None:
    magnus.track_this(token=magnus.get_secret("token"), score=1.0)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tracked_steps.py").write_text(STEPS)
    (tmp_path / "params.yaml").write_text("rate: 0.5\nitems: [ab, ../x/y]\n")
    write_pipeline(
        tmp_path, {"train": task("tracked_steps.train", "fan"), "fan": map_of("tracked_steps.each")}, "train"
    )
    with installed_plugins(tmp_path / "site", {"secrets": {"known": "magnus.testing.secrets:KnownSecrets"}}):
        yield tmp_path


def configure(project: Path, workers: int = 1) -> str:
    config = {
        "executor": {"type": "local", "config": {"max_workers": workers}},
        "run_log_store": {"type": "file-system"},
        "experiment_tracker": {"type": "tensorboard", "config": {"log_dir": "tb"}},
        "secrets": {"type": "known", "config": {"values": {"token": SECRET}}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return "config.yaml"


@pytest.mark.parametrize("workers", [1, 2], ids=["in-turn", "worker-processes"])
def test_a_pipeline_writes_what_tensorboard_shows(project: Path, workers: int) -> None:
    run_log = execute("pipeline.yaml", configure(project, workers), "params.yaml", run_id="tb-run", tag="nightly")
    assert run_log.status == "SUCCESS"
    folders = read_run(project / "tb", "tb-run")
    # a folder per step that tracked; a map value's '/' stays inside its folder's name
    assert set(folders) == {"", "train", "fan.ab.work", "fan...%2Fx%2Fy.work"}
    run = folders[""]
    assert run.hparams == {"rate": 0.5, "items": '["ab", "../x/y"]', "magnus.run_id": "tb-run", "magnus.tag": "nightly"}
    assert run.end_status == api_pb2.STATUS_SUCCESS
    train = folders["train"]
    assert train.scalars["loss"] == [(0, 0.5), (1, 0.25), (2, 0.5 / 3)]
    assert train.texts == {"model": "tree", STATUS_TAG: "SUCCESS"}
    assert train.scalars[DURATION_TAG][0][1] >= 0
    assert folders["fan...%2Fx%2Fy.work"].scalars["item_length"] == [(0, 6.0)]
    assert folders["fan.ab.work"].scalars["item_length"] == [(0, 2.0)]


def test_a_secret_reaches_no_event_file(project: Path) -> None:
    write_pipeline(project, {"leaky": task("tracked_steps.leaky")}, "leaky", name="leaky.yaml")
    run_log = execute("leaky.yaml", configure(project), "params.yaml", run_id="leaky-run")
    assert run_log.status == "SUCCESS"
    written = b"".join(path.read_bytes() for path in (project / "tb").rglob("events.out.tfevents.*"))
    assert SECRET.encode() not in written
    assert read_run(project / "tb", "leaky-run")["leaky"].texts["token"] == "***"


def test_a_failed_run_ends_its_session_failed(tmp_path: Path) -> None:
    tracker = TensorBoardExperimentTracker(log_dir=str(tmp_path))
    tracker.start_run("failed-run", parameters={"layers": [1, 2], "deep": True})
    tracker.start_step("failed-run", "", "broken")
    tracker.log_metric("progress", 0.5)
    tracker.end_step("broken", "FAIL")
    tracker.end_run("FAIL")
    folders = read_run(tmp_path, "failed-run")
    assert folders[""].end_status == api_pb2.STATUS_FAILURE
    assert folders[""].hparams["deep"] is True and folders[""].hparams["layers"] == "[1, 2]"
    assert folders["broken"].texts[STATUS_TAG] == "FAIL"


def test_a_url_is_refused_as_log_dir() -> None:
    with pytest.raises(ConfigurationError, match=r"^c.yaml: experiment_tracker.config.log_dir: .*is a URL"):
        create_service("experiment_tracker", {"type": "tensorboard", "config": {"log_dir": "s3://b/x"}}, "c.yaml")

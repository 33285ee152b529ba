"""Several experiment trackers at once: every one receives what the run tracks, and one failing
fails the step, naming it. The trackers are real plugins (``recording_trackers``), installed in a
folder on ``sys.path`` as pip would install a distribution."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml

from magnus import defaults
from magnus.config import create_service, load_configuration
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError, ServiceError
from magnus.testing import ExperimentTrackerContract
from magnus.testing.pipelines import closed_port, map_of, task, write_pipeline
from magnus.testing.plugins import installed_plugins
from magnus.testing.tracker import Tracked, TrackedParameters
from magnus.tracker import BaseExperimentTracker, SeveralTrackers

HERE = Path(__file__).parent
SECRET = "s3cr3t-Value-77"


@pytest.fixture
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``jsonl`` and ``http`` installed as experiment trackers, ``known`` as secrets."""
    entry_points = {
        "experiment_tracker": {
            "jsonl": "recording_trackers:JsonLinesTracker",
            "http": "recording_trackers:HttpTracker",
            "failing": "recording_trackers:FailingTracker",
        },
        "secrets": {"known": "magnus.testing.secrets:KnownSecrets"},
    }
    with installed_plugins(tmp_path_factory.mktemp("site"), entry_points):
        yield


def records(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def metrics_in(path: Path) -> Tracked:
    seen: Tracked = {}
    for record in records(path):
        if record["call"] == "metric":
            seen.setdefault(record["key"], []).append((record["step"], record["value"]))
    return seen


# ---- the contract, for several trackers read back one by one ----------------------------------------------
class TestSeveralTrackers(ExperimentTrackerContract):
    @pytest.fixture
    def tracker(self, tmp_path: Path, installed: None) -> BaseExperimentTracker:
        from recording_trackers import JsonLinesTracker

        return SeveralTrackers([JsonLinesTracker(path=str(tmp_path / f"{n}.jsonl")) for n in (1, 2)])

    def another_process(self, tracker: BaseExperimentTracker) -> BaseExperimentTracker:
        assert isinstance(tracker, SeveralTrackers)
        return SeveralTrackers([type(each).model_validate(each.model_dump()) for each in tracker.trackers])

    def _files(self, tracker: BaseExperimentTracker) -> List[Path]:
        assert isinstance(tracker, SeveralTrackers)
        return [Path(each.model_dump()["path"]) for each in tracker.trackers]

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        """Each tracker's file, read back; all of them received the same."""
        first, *others = [metrics_in(path) for path in self._files(tracker)]
        assert all(other == first for other in others)
        return first

    def parameters(self, tracker: BaseExperimentTracker, run_id: str) -> TrackedParameters:
        seen: List[TrackedParameters] = []
        for path in self._files(tracker):
            found: TrackedParameters = {}
            for record in records(path):
                if record["call"] == "start_run":
                    found.update({key: str(value) for key, value in record["parameters"].items()})
                if record["call"] == "parameter":
                    found[record["key"]] = str(record["value"])
            seen.append(found)
        assert all(each == seen[0] for each in seen)
        return seen[0]


# ---- configuration ---------------------------------------------------------------------------------------
STEPS = """
import magnus


def train() -> None:
    for epoch in range(3):
        magnus.track_this(step=epoch, loss=1.0 / (epoch + 1))
    magnus.track_this(model="tree")


def each(item: int) -> None:
    magnus.track_this(item_score=item * 10)


def leaky() -> None:
    magnus.track_this(token=magnus.get_secret("token"), score=1.0)


def returns_metrics():
    return f"key {magnus.get_secret('token')}", 0.9
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: None) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tracked_steps.py").write_text(STEPS)
    (tmp_path / "params.yaml").write_text("rate: 0.1\nitems: [1, 2]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    write_pipeline(
        tmp_path, {"train": task("tracked_steps.train", "fan"), "fan": map_of("tracked_steps.each")}, "train"
    )
    return tmp_path


def configure(project: Path, tracker: Any, **more: Any) -> str:
    (project / "config.yaml").write_text(yaml.safe_dump({"experiment_tracker": tracker, **more}))
    return "config.yaml"


def jsonl(path: Path) -> Dict[str, Any]:
    return {"type": "jsonl", "config": {"path": str(path)}}


def test_every_tracker_of_a_list_receives_the_run(project: Path) -> None:
    first, second = project / "first.jsonl", project / "second.jsonl"
    config = configure(project, [jsonl(first), jsonl(second)])
    run_log = execute("pipeline.yaml", config, "params.yaml", run_id="several-run", tag="nightly")
    assert run_log.status == defaults.SUCCESS
    for path in (first, second):
        seen = records(path)
        assert seen[0] == {
            "call": "start_run",
            "run": "several-run",
            "tag": "nightly",
            "parameters": run_log.parameters,
        }
        assert metrics_in(path) == {"loss": [(0, 1.0), (1, 0.5), (2, 1 / 3)], "item_score": [(0, 10.0), (0, 20.0)]}
        assert {"call": "parameter", "key": "model", "value": "tree"} in seen
        assert [r["step"] for r in seen if r["call"] == "end_step"] == ["train", "fan.1.work", "fan.2.work"]
        assert seen[-1] == {"call": "end_run", "status": defaults.SUCCESS}
    summary = run_log.run_config["experiment_tracker"]
    assert summary["service_name"] == "several"
    assert [each["path"] for each in summary["trackers"]] == [str(first), str(second)]


def test_a_step_in_a_worker_process_has_the_variables_of_its_launch(project: Path) -> None:
    """What a launch request's environment would carry reaches the step in a forked worker too."""
    path = project / "workers.jsonl"
    config = configure(project, [jsonl(path)], executor={"type": "local", "config": {"max_workers": 2}})
    (project / "config.yaml").write_text(
        yaml.safe_dump(
            {**yaml.safe_load((project / "config.yaml").read_text()), "run_log_store": {"type": "file-system"}}
        )
    )
    assert execute("pipeline.yaml", config, "params.yaml", run_id="workers-run").status == defaults.SUCCESS
    started = {record["step"]: record["launched_for"] for record in records(path) if record["call"] == "start_step"}
    assert started == {"train": "train", "fan.1.work": "fan.1.work", "fan.2.work": "fan.2.work"}
    assert "RECORDING_TRACKER_UNIT" not in os.environ


def test_a_launch_request_carries_the_trackers_environment(tmp_path: Path, installed: None) -> None:
    from recording_trackers import JsonLinesTracker

    from magnus.runtime.request import RunStep
    from magnus.runtime.services import RunOptions

    tracker = SeveralTrackers([JsonLinesTracker(path=str(tmp_path / "t.jsonl"))])
    environment = tuple(tracker.launch_environment("fan.1.work").items())
    request = RunStep(run=RunOptions(run_id="r", pipeline_file="p.yaml"), step="fan.1.work", environment=environment)
    assert request.environment_variables() == {"RECORDING_TRACKER_UNIT": "fan.1.work"}
    assert "RECORDING_TRACKER_UNIT" not in " ".join(request.to_argv())


def test_a_single_mapping_is_one_tracker_as_in_magnus_0_5_1(project: Path) -> None:
    config = configure(project, jsonl(project / "one.jsonl"))
    run_log = execute("pipeline.yaml", config, "params.yaml", run_id="single-run")
    assert run_log.status == defaults.SUCCESS
    assert run_log.run_config["experiment_tracker"]["service_name"] == "jsonl"
    assert metrics_in(project / "one.jsonl")["item_score"] == [(0, 10.0), (0, 20.0)]


def test_a_tracker_that_fails_fails_the_step_naming_it_and_the_others_still_receive(project: Path) -> None:
    port = closed_port()
    kept = project / "kept.jsonl"
    config = configure(project, [jsonl(kept), {"type": "http", "config": {"url": f"http://127.0.0.1:{port}/track"}}])
    run_log = execute("pipeline.yaml", config, "params.yaml", run_id="failing-run")
    assert run_log.status == defaults.FAIL
    message = run_log.steps["train"].message
    assert message.startswith("ServiceError: experiment_tracker[2] 'http': it cannot be reached ("), message
    assert "\n" not in message
    assert metrics_in(kept)["loss"] == [(0, 1.0)]  # the first tracker had it; the step stopped there
    assert [r["status"] for r in records(kept) if r["call"] == "end_step"] == [defaults.FAIL]


@pytest.mark.parametrize("hook", ["start_step", "end_step"])
def test_a_tracker_failing_at_a_steps_start_or_end_fails_that_step_not_the_walk(project: Path, hook: str) -> None:
    config = configure(
        project, {"type": "failing", "config": {"fails_at": hook}}, run_log_store={"type": "file-system"}
    )
    run_log = execute("pipeline.yaml", config, "params.yaml", run_id=f"failing-{hook}")
    assert run_log.status == defaults.FAIL
    train = run_log.steps["train"]
    assert train.status == defaults.FAIL
    assert train.message == "experiment_tracker 'failing': RuntimeError: the tracking server said no"
    assert train.attempts[-1].message == train.message
    assert "fan" not in run_log.steps  # the walk went to the fail node
    if hook == "start_step":  # the command did not run: nothing it tracked
        assert train.user_defined_metrics == {}
    if hook == "end_step":  # it ran, then failed: never indexed as an execution to reuse (--cache)
        from magnus.datastore.file_system import FileSystemRunLogStore

        assert train.cache is not None
        assert (
            FileSystemRunLogStore(log_folder=str(project / ".run_log_store")).cached_execution(train.cache.key) is None
        )


def test_one_failure_is_raised_after_every_tracker_had_the_call(tmp_path: Path, installed: None) -> None:
    from recording_trackers import HttpTracker, JsonLinesTracker

    dead = f"http://127.0.0.1:{closed_port()}/"
    trackers = SeveralTrackers(
        [HttpTracker(url=dead), JsonLinesTracker(path=str(tmp_path / "t.jsonl")), HttpTracker(url=dead)]
    )
    with pytest.raises(ServiceError, match=r"^experiment_tracker\[1\] 'http': .* \(and 1 more tracker\(s\) failed\)$"):
        trackers.log_metric("loss", 0.5)
    assert metrics_in(tmp_path / "t.jsonl") == {"loss": [(0, 0.5)]}


def test_a_secret_tracked_reaches_no_tracker(project: Path) -> None:
    write_pipeline(project, {"leaky": task("tracked_steps.leaky")}, "leaky", name="leaky.yaml")
    first, second = project / "first.jsonl", project / "second.jsonl"
    config = configure(
        project, [jsonl(first), jsonl(second)], secrets={"type": "known", "config": {"values": {"token": SECRET}}}
    )
    run_log = execute("leaky.yaml", config, "params.yaml", run_id="leaky-run")
    assert run_log.status == defaults.SUCCESS
    for path in (first, second):
        assert SECRET not in path.read_text()
        assert {"call": "parameter", "key": "token", "value": "***"} in records(path)


@pytest.mark.parametrize(
    ("tracker", "message"),
    [
        (
            [{"type": "jsonl", "config": {"path": "x"}}, "jsonl"],
            "config.yaml: experiment_tracker[2]: must be a mapping with 'type' and 'config'",
        ),
        ([{"config": {"path": "x"}}], "config.yaml: experiment_tracker[1].type: missing"),
        ([{"type": "jsonl", "config": {}, "extra": 1}], "config.yaml: experiment_tracker[1].extra: unknown field"),
        ("jsonl", "config.yaml: experiment_tracker: must be a mapping with 'type' and 'config' (or a list of such"),
    ],
)
def test_a_malformed_list_is_refused_naming_the_entry(project: Path, tracker: Any, message: str) -> None:
    configure(project, tracker)
    with pytest.raises(ConfigurationError) as raised:
        load_configuration("config.yaml")
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"type": "nope"},
            "config.yaml: experiment_tracker[2].type: unknown experiment_tracker type 'nope' (installed: ",
        ),
        (
            {"type": "jsonl", "config": {"paht": "x"}},
            "config.yaml: experiment_tracker[2].config.paht: unknown field (allowed: path)",
        ),
    ],
)
def test_a_bad_tracker_of_a_list_is_named_by_its_place(project: Path, block: Dict[str, Any], message: str) -> None:
    configure(project, [jsonl(project / "ok.jsonl"), block])
    configuration = load_configuration("config.yaml")
    with pytest.raises(ConfigurationError) as raised:
        create_service("experiment_tracker", configuration["experiment_tracker"], "config.yaml")
    assert message in str(raised.value)


def test_metrics_a_step_returns_reach_every_tracker_through_the_redactor(project: Path) -> None:
    """``returns: [{name, kind: metric}]`` tracks as ``track_this`` does: numbers are metrics,
    anything else a tracker parameter, secrets masked in the trackers and the step log alike."""
    metrics = [{"name": "token", "kind": "metric"}, {"name": "score", "kind": "metric"}]
    write_pipeline(project, {"ret": task("tracked_steps.returns_metrics", returns=metrics)}, "ret", name="ret.yaml")
    first, second = project / "first.jsonl", project / "second.jsonl"
    config = configure(
        project, [jsonl(first), jsonl(second)], secrets={"type": "known", "config": {"values": {"token": SECRET}}}
    )
    run_log = execute("ret.yaml", config, "params.yaml", run_id="returned-metrics")
    assert run_log.status == defaults.SUCCESS
    assert run_log.steps["ret"].user_defined_metrics == {"token": "key ***", "score": 0.9}
    for path in (first, second):
        assert SECRET not in path.read_text()
        assert metrics_in(path) == {"score": [(0, 0.9)]}
        assert {"call": "parameter", "key": "token", "value": "key ***"} in records(path)

"""Traces of runs: the SDK's in-memory exporter, the file exporter, and a real OTLP/HTTP receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spans import Receiver, SpanRecord, from_file, from_otlp

from magnus.config import create_service
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing import ExperimentTrackerContract
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.plugins import installed_plugins
from magnus.testing.tracker import Tracked, TrackedParameters
from magnus.tracker import BaseExperimentTracker
from magnus_tracker_opentelemetry.tracker import TRACEPARENT_VARIABLE, OpenTelemetryTracker, run_span_context

SECRET = "otel-Secret-Value-64"


def events_of(spans: List[SpanRecord], kind: str) -> List[Dict[str, object]]:
    """Events ``kind`` of all spans, in the order they were added (spans end inner first)."""
    found = [event for span in spans for event in span.events if event["name"] == kind]
    return sorted(found, key=lambda event: str(event["timestamp"]))  # ISO times, of one clock


class TestOpenTelemetryFile(ExperimentTrackerContract):
    """What a run tracks reaches its spans as events, read back from the exported file."""

    @pytest.fixture
    def tracker(self, tmp_path: Path) -> BaseExperimentTracker:
        return OpenTelemetryTracker(exporter="file", path=str(tmp_path / "spans.jsonl"))

    def _spans(self, tracker: BaseExperimentTracker, run_id: str) -> List[SpanRecord]:
        assert isinstance(tracker, OpenTelemetryTracker)
        return [span for span in from_file(Path(tracker.path)) if span.attributes.get("magnus.run_id") == run_id]

    def tracked(self, tracker: BaseExperimentTracker, run_id: str) -> Tracked:
        seen: Tracked = {}
        for event in events_of(self._spans(tracker, run_id), "magnus.metric"):
            seen.setdefault(str(event["metric"]), []).append((int(str(event["step"])), float(str(event["value"]))))
        return seen

    def parameters(self, tracker: BaseExperimentTracker, run_id: str) -> TrackedParameters:
        seen: TrackedParameters = {}
        for span in self._spans(tracker, run_id):
            for key, value in span.attributes.items():
                if key.startswith("magnus.parameter."):
                    seen[key.removeprefix("magnus.parameter.")] = str(json.loads(value))
        for event in events_of(self._spans(tracker, run_id), "magnus.parameter"):
            seen[str(event["parameter"])] = str(event["value"])
        return seen


# ---- the shape of a trace, with the SDK's in-memory exporter -------------------------------------------------
def test_spans_nest_as_the_run_does(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    tracker = OpenTelemetryTracker(exporter="file", path=str(tmp_path / "spans.jsonl"))
    tracker.add_exporter(memory)
    tracker.describe_run("local")
    tracker.start_run("shape-run", "nightly", {"rate": 0.1})
    tracker.start_step("shape-run", "nightly", "train")
    tracker.start_attempt("train", 1)
    tracker.end_attempt("train", 1, "FAIL", "RuntimeError: flaky")
    tracker.start_attempt("train", 2)
    tracker.log_metric("loss", 0.5, 1)
    tracker.end_attempt("train", 2, "SUCCESS")
    tracker.end_step("train", "SUCCESS")
    tracker.start_composite("fan", [("fan.1", {"item": 1}), ("fan.2", {"item": 2})])
    for item, status in ((1, "SUCCESS"), (2, "FAIL")):
        tracker.start_step("shape-run", "nightly", f"fan.{item}.work")
        tracker.start_attempt(f"fan.{item}.work", 1, {"item": item})
        tracker.end_attempt(f"fan.{item}.work", 1, status, "" if status == "SUCCESS" else "ValueError: bad item")
        tracker.end_step(f"fan.{item}.work", status)
        tracker.end_branch(f"fan.{item}", status)
    tracker.end_composite("fan", "FAIL", "branches that did not succeed: fan.2")
    tracker.end_run("FAIL")
    tracker._provider.force_flush()  # type: ignore[union-attr]

    finished = memory.get_finished_spans()
    assert len({span.context.trace_id for span in finished}) == 1  # one run, one trace
    spans = {(span.name, span.attributes.get("magnus.step")): span for span in finished}
    run = spans[("magnus run", None)]
    assert run.parent is None and run.attributes["magnus.status"] == "FAIL"
    assert run.attributes["magnus.executor"] == "local" and run.attributes["magnus.parameter.rate"] == "0.1"

    def parent(key: tuple) -> tuple:  # type: ignore[type-arg]
        (found,) = [k for k, span in spans.items() if span.context.span_id == spans[key].parent.span_id]  # type: ignore[union-attr]
        return found

    assert parent(("step train", "train")) == ("magnus run", None)
    assert parent(("attempt 2", "train")) == ("step train", "train")
    assert spans[("attempt 1", "train")].attributes["magnus.error"] == "RuntimeError: flaky"
    assert spans[("attempt 1", "train")].status.is_ok is False
    assert spans[("step train", "train")].attributes["magnus.attempt"] == 2
    assert [event.attributes["metric"] for event in spans[("step train", "train")].events] == ["loss"]
    assert parent(("step fan", "fan")) == ("magnus run", None)
    assert parent(("branch fan.2", "fan")) == ("step fan", "fan")
    assert parent(("step fan.2.work", "fan.2.work")) == ("branch fan.2", "fan")
    item = spans[("step fan.2.work", "fan.2.work")]
    assert item.attributes["magnus.map_values"] == '{"item": 2}' and item.attributes["magnus.status"] == "FAIL"
    assert item.attributes["magnus.error"] == "ValueError: bad item"
    assert spans[("branch fan.1", "fan")].attributes["magnus.map_values"] == '{"item": 1}'


def test_a_unit_launched_elsewhere_joins_the_trace_through_its_environment(tmp_path: Path) -> None:
    """Another process (as a container or a SLURM job would be) receives MAGNUS_TRACEPARENT."""
    path = tmp_path / "spans.jsonl"
    walker = OpenTelemetryTracker(exporter="file", path=str(path))
    walker.start_run("remote-run")
    walker.start_composite("fan", [("fan.1", {"item": 1})])
    environment = walker.launch_environment("fan.1.work")
    assert set(environment) == {TRACEPARENT_VARIABLE}
    code = textwrap.dedent(
        f"""
        from magnus_tracker_opentelemetry.tracker import OpenTelemetryTracker
        pod = OpenTelemetryTracker(exporter="file", path={str(path)!r})
        pod.describe_run("local-container")
        pod.start_step("remote-run", "", "fan.1.work")
        pod.start_attempt("fan.1.work", 1, {{"item": 1}})
        pod.end_attempt("fan.1.work", 1, "SUCCESS")
        pod.end_step("fan.1.work", "SUCCESS")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **environment})
    walker.end_branch("fan.1", "SUCCESS")
    walker.end_composite("fan", "SUCCESS")
    walker.end_run("SUCCESS")
    spans = {span.name: span for span in from_file(path)}
    assert len({span.trace_id for span in spans.values()}) == 1
    assert spans["step fan.1.work"].parent_id == spans["branch fan.1"].span_id
    assert spans["step fan.1.work"].attributes["magnus.executor"] == "local-container"
    assert spans["attempt 1"].parent_id == spans["step fan.1.work"].span_id


def test_processes_handed_no_context_join_the_run_span_derived_from_the_run_id(tmp_path: Path) -> None:
    """As the pods of a workflow rendered before the run: the first creates the run, others run steps,
    the last ends it; none is handed a traceparent, and all of it is one trace under one run span."""
    path = tmp_path / "spans.jsonl"
    first = textwrap.dedent(
        f"""
        from magnus_tracker_opentelemetry.tracker import OpenTelemetryTracker
        pod = OpenTelemetryTracker(exporter="file", path={str(path)!r})
        pod.start_step("rendered-run", "", "prepare")
        pod.end_step("prepare", "SUCCESS")
        """
    )
    last = textwrap.dedent(
        f"""
        from magnus_tracker_opentelemetry.tracker import OpenTelemetryTracker
        pod = OpenTelemetryTracker(exporter="file", path={str(path)!r})
        pod.start_run("rendered-run")
        pod.end_run("SUCCESS")
        """
    )
    environment = {name: value for name, value in os.environ.items() if "TRACEPARENT" not in name}
    for code in (first, first.replace("prepare", "train"), last):
        subprocess.run([sys.executable, "-c", code], check=True, env=environment)
    spans = {span.name: span for span in from_file(path)}
    assert set(spans) == {"step prepare", "step train", "magnus run"}
    assert len({span.trace_id for span in spans.values()}) == 1
    run_span = spans["magnus run"]
    assert run_span.parent_id in (None, "")
    assert spans["step prepare"].parent_id == spans["step train"].parent_id == run_span.span_id
    assert run_span.trace_id == format(run_span_context("rendered-run").trace_id, "032x")


# ---- pipelines ---------------------------------------------------------------------------------------------
STEPS = """
import magnus


def train(rate: float) -> None:
    magnus.track_this(step=0, loss=rate)
    magnus.track_this(step=1, loss=rate / 2)


def each(item: int) -> None:
    magnus.track_this(item_score=item * 10)


def leaky() -> None:
    token = magnus.get_secret("token")
    magnus.track_this(token=token)
    raise RuntimeError(f"refused with {token}")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TRACEPARENT", raising=False)
    (tmp_path / "tracked_steps.py").write_text(STEPS)
    (tmp_path / "params.yaml").write_text("rate: 0.5\nitems: [1, 2]\n")
    write_pipeline(
        tmp_path, {"train": task("tracked_steps.train", "fan"), "fan": map_of("tracked_steps.each")}, "train"
    )
    with installed_plugins(tmp_path / "site", {"secrets": {"known": "magnus.testing.secrets:KnownSecrets"}}):
        yield tmp_path


def configure(project: Path, tracker: Dict[str, object], workers: int = 1) -> str:
    config = {
        "executor": {"type": "local", "config": {"max_workers": workers}},
        "run_log_store": {"type": "file-system"},
        "experiment_tracker": {"type": "opentelemetry", "config": tracker},
        "secrets": {"type": "known", "config": {"values": {"token": SECRET}}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return "config.yaml"


def check_pipeline_trace(spans: List[SpanRecord]) -> None:
    assert len({span.trace_id for span in spans}) == 1
    steps = {(span.name, span.attributes.get("magnus.step")): span for span in spans}
    ids = {span.span_id: key for key, span in steps.items()}
    assert len(steps) == len(spans)
    parents = {key: ids.get(span.parent_id or "") for key, span in steps.items()}
    assert parents == {
        ("magnus run", None): None,
        ("step train", "train"): ("magnus run", None),
        ("attempt 1", "train"): ("step train", "train"),
        ("step fan", "fan"): ("magnus run", None),
        ("branch fan.1", "fan"): ("step fan", "fan"),
        ("branch fan.2", "fan"): ("step fan", "fan"),
        ("step fan.1.work", "fan.1.work"): ("branch fan.1", "fan"),
        ("step fan.2.work", "fan.2.work"): ("branch fan.2", "fan"),
        ("attempt 1", "fan.1.work"): ("step fan.1.work", "fan.1.work"),
        ("attempt 1", "fan.2.work"): ("step fan.2.work", "fan.2.work"),
    }
    assert {span.attributes.get("magnus.status") for span in spans} == {"SUCCESS"}
    assert {span.attributes["magnus.run_id"] for span in spans} == {"otel-run"}
    assert steps[("step fan.2.work", "fan.2.work")].attributes["magnus.map_values"] == '{"item": 2}'
    loss = [event for event in steps[("step train", "train")].events if event["name"] == "magnus.metric"]
    assert [(event["step"], event["value"]) for event in loss] == [(0, 0.5), (1, 0.25)]


@pytest.mark.parametrize("workers", [1, 2], ids=["in-turn", "worker-processes"])
def test_a_pipeline_is_one_trace_in_the_file(project: Path, workers: int) -> None:
    config = configure(project, {"exporter": "file", "path": "traces/spans.jsonl"}, workers)
    assert execute("pipeline.yaml", config, "params.yaml", run_id="otel-run").status == "SUCCESS"
    check_pipeline_trace(from_file(project / "traces" / "spans.jsonl"))


def test_a_pipeline_is_one_trace_at_an_otlp_receiver(project: Path, otlp: Receiver) -> None:
    config = configure(project, {"exporter": "otlp-http", "endpoint": otlp.endpoint}, workers=2)
    assert execute("pipeline.yaml", config, "params.yaml", run_id="otel-run").status == "SUCCESS"
    check_pipeline_trace(from_otlp(otlp.bodies))


def test_a_secret_reaches_no_span_and_no_exported_byte(project: Path, otlp: Receiver) -> None:
    write_pipeline(project, {"leaky": task("tracked_steps.leaky")}, "leaky", name="leaky.yaml")
    for tracker in ({"exporter": "file", "path": "spans.jsonl"}, {"exporter": "otlp-http", "endpoint": otlp.endpoint}):
        config = configure(project, tracker)
        run_id = f"leaky-{tracker['exporter']}"
        assert execute("leaky.yaml", config, "params.yaml", run_id=run_id).status == "FAIL"
    written = (project / "spans.jsonl").read_bytes()
    assert SECRET.encode() not in written and all(SECRET.encode() not in body for body in otlp.bodies)
    for spans in (from_file(project / "spans.jsonl"), from_otlp(otlp.bodies)):
        attempt = next(span for span in spans if span.name == "attempt 1")
        assert attempt.attributes["magnus.error"] == "RuntimeError: refused with ***" and attempt.error
        step = next(span for span in spans if span.name == "step leaky")
        assert [event["value"] for event in step.events if event["name"] == "magnus.parameter"] == ["***"]


def test_the_file_exporter_needs_a_path() -> None:
    with pytest.raises(ConfigurationError, match=r"^c.yaml: experiment_tracker.config: .*exporter 'file' needs a path"):
        create_service("experiment_tracker", {"type": "opentelemetry", "config": {"exporter": "file"}}, "c.yaml")

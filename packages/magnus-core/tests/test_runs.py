"""Pipelines run end to end with the local executor: run log layout, routing, retries, re-runs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from magnus import defaults
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.entrypoints import execute
from magnus.testing.executor import outcome
from magnus.testing.pipelines import TERMINALS, write_pipeline
from magnus.testing.run_log_store import RUN_LOG_KEYS

STEPS = '''
import os
from pathlib import Path

import magnus


def count_attempts() -> dict:
    """Fails twice, then succeeds (retries)."""
    counter = Path("attempts.txt")
    seen = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(seen + 1))
    if seen < 2:
        raise RuntimeError(f"attempt {seen + 1} fails")
    return {"attempts": seen + 1}


def uses_interaction(x: int) -> None:
    assert magnus.get_parameter("x") == x
    assert magnus.get_parameter("x", cast_as=str) == str(x)
    magnus.set_parameter(set_inside=x * 3)
    magnus.track_this(metric=1.5)
    magnus.put_object([1, 2, 3], "numbers")
    assert magnus.get_object("numbers") == [1, 2, 3]
    assert magnus.get_run_id() == "interaction-run"
    assert magnus.get_run_log().run_id == "interaction-run"
    print("interaction ok")


def inner_value(outer: str, inner: int) -> dict:
    return {f"{outer}_{inner}": inner}


def changes_its_arguments(values: list, **rest) -> None:
    values.append("changed")
    rest["items"].append("changed")
    magnus.get_parameter("values").append("changed")
    magnus.get_parameter()["items"].append("changed")


def sees_the_stored(values: list, items: list) -> dict:
    return {"seen": [values, items]}


def crash() -> None:
    os._exit(3)  # the process dies mid-run, as with a kill or an OOM
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def write(project: Path, steps: Dict[str, Any], start_at: str) -> str:
    return write_pipeline(project, steps, start_at)


def test_file_system_run_log_layout(project: Path) -> None:
    pipeline = write(project, {"a": {"type": "stub", "next": "success"}}, "a")
    execute(pipeline, "config.yaml", run_id="layout-run", tag="nightly")
    text = (project / ".run_log_store" / "layout-run.json").read_text()
    assert text.startswith('{\n    "run_id": "layout-run",\n'), "magnus 0.5.1's file: JSON indented by 4"
    stored = json.loads(text)
    assert list(stored) == RUN_LOG_KEYS
    assert (stored["run_id"], stored["tag"], stored["status"]) == ("layout-run", "nightly", "SUCCESS")
    assert list(stored["steps"]) == ["a", "success"]
    step = stored["steps"]["a"]
    assert step["step_type"] == "stub" and step["code_identities"][0]["code_identifier_type"] == "git"
    assert stored["run_config"]["executor"]["service_name"] == "local"
    assert stored["run_config"]["dag"]["start_at"] == "a"
    assert not (project / ".run_log_store" / "layout-run.journal").exists(), "the journal is folded at the end"


def test_retries_record_every_attempt(project: Path) -> None:
    pipeline = write(
        project,
        {"flaky": {"type": "task", "command": "run_steps.count_attempts", "max_attempts": 3, "next": "success"}},
        "flaky",
    )
    run_log = execute(pipeline, "config.yaml", run_id="retry-run")
    attempts = run_log.steps["flaky"].attempts
    assert [attempt.status for attempt in attempts] == ["FAIL", "FAIL", "SUCCESS"]
    assert [attempt.attempt_number for attempt in attempts] == [1, 2, 3]
    assert "attempt 1 fails" in attempts[0].message
    assert run_log.parameters["attempts"] == 3


def test_interaction_api_inside_a_step(project: Path) -> None:
    (project / "params.yaml").write_text("x: 4\n")
    pipeline = write(
        project, {"use": {"type": "task", "command": "run_steps.uses_interaction", "next": "success"}}, "use"
    )
    run_log = execute(pipeline, "config.yaml", "params.yaml", run_id="interaction-run")
    assert run_log.status == "SUCCESS", run_log.steps["use"].message
    assert run_log.parameters["set_inside"] == 12
    assert run_log.steps["use"].user_defined_metrics == {"metric": 1.5}


def test_nested_maps_are_keyed_by_values(project: Path) -> None:
    (project / "params.yaml").write_text("outers: [a, b]\ninners: [1, 2]\n")
    inner = {
        "type": "map",
        "iterate_on": "inners",
        "iterate_as": "inner",
        "next": "success",
        "branch": {
            "start_at": "leaf",
            "steps": {"leaf": {"type": "task", "command": "run_steps.inner_value", "next": "success"}, **TERMINALS},
        },
    }
    outer = {
        "type": "map",
        "iterate_on": "outers",
        "iterate_as": "outer",
        "next": "success",
        "branch": {"start_at": "inner", "steps": {"inner": inner, **TERMINALS}},
    }
    run_log = execute(write(project, {"outer": outer}, "outer"), "config.yaml", "params.yaml", run_id="maps")
    assert run_log.status == "SUCCESS"
    results = outcome(run_log)
    assert results["outer.a.inner.2.leaf"] == "SUCCESS"
    assert results["outer.b.inner"] == "SUCCESS"
    assert {run_log.parameters[key] for key in ("a_1", "a_2", "b_1", "b_2")} == {1, 2}


def test_a_function_changing_its_arguments_does_not_change_the_parameters(project: Path) -> None:
    (project / "params.yaml").write_text("values: [1]\nitems: [2]\n")
    steps = {
        "change": {"type": "task", "command": "run_steps.changes_its_arguments", "next": "see"},
        "see": {"type": "task", "command": "run_steps.sees_the_stored", "next": "success"},
    }
    run_log = execute(write(project, steps, "change"), "config.yaml", "params.yaml", run_id="copies-run")
    assert run_log.status == "SUCCESS", run_log.steps["change"].message
    assert run_log.parameters["seen"] == [[1], [2]]
    assert (run_log.parameters["values"], run_log.parameters["items"]) == ([1], [2])


def test_map_over_a_missing_parameter_fails_the_step(project: Path) -> None:
    step = {
        "type": "map",
        "iterate_on": "nothing",
        "iterate_as": "x",
        "next": "success",
        "branch": {"start_at": "s", "steps": {"s": {"type": "stub", "next": "success"}, **TERMINALS}},
    }
    run_log = execute(write(project, {"m": step}, "m"), "config.yaml", run_id="no-list")
    assert run_log.status == "FAIL"
    assert "parameter 'nothing' to iterate on is not set" in run_log.steps["m"].message


def test_a_crash_leaves_a_readable_resumable_run_log(project: Path) -> None:
    import subprocess
    import sys

    steps = {
        "first": {"type": "task", "command_type": "shell", "command": "export MAGNUS_PRM_first=done", "next": "crash"},
        "crash": {"type": "task", "command": "run_steps.crash", "next": "success"},
    }
    pipeline = write(project, steps, "first")
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "crashed"],
        capture_output=True,
        text=True,
        check=False,
    )
    # The step ended magnus's process (os._exit(3)): the supervising process records it and exits 1.
    assert result.returncode == 1
    assert "its process exited with code 3, before recording its end" in result.stderr
    # A torn last line, as a crash in the middle of a write leaves it.
    with open(project / ".run_log_store" / "crashed.journal", "ab") as journal:
        journal.write(b'{"op":"step","value":{"name":"tor')
    store = FileSystemRunLogStore()
    crashed = store.get_run_log_by_id("crashed")
    assert crashed.status == defaults.FAIL
    assert crashed.steps["first"].status == defaults.SUCCESS
    assert crashed.steps["crash"].status == defaults.FAIL
    assert crashed.steps["crash"].message == "its process exited with code 3, before recording the step"
    assert crashed.parameters["first"] == "done"

    steps["crash"] = {"type": "stub", "next": "success"}  # the fix
    resumed = execute(write(project, steps, "first"), "config.yaml", run_id="resumed", use_cached="crashed")
    assert resumed.status == "SUCCESS"
    assert resumed.steps["first"].mock is True
    assert resumed.parameters["first"] == "done"


def test_step_output_is_shown(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = {"say": {"type": "task", "command_type": "shell", "command": "echo out; echo err >&2", "next": "success"}}
    execute(write(project, steps, "say"), "config.yaml", run_id="output")
    captured = capsys.readouterr()
    assert "out" in captured.out and "err" in captured.out


def test_mocked_executor_runs_only_patches(project: Path) -> None:
    steps = {
        "skipped": {"type": "task", "command": "run_steps.crash", "next": "patched"},
        "patched": {"type": "task", "command": "run_steps.crash", "next": "success"},
    }
    (project / "mocked.yaml").write_text(
        yaml.safe_dump(
            {
                "executor": {
                    "type": "mocked",
                    "config": {"patches": {"patched": {"command_type": "shell", "command": "export MAGNUS_PRM_p=1"}}},
                }
            }
        )
    )
    run_log = execute(write(project, steps, "skipped"), "mocked.yaml", run_id="dry")
    assert run_log.status == "SUCCESS"
    assert run_log.steps["skipped"].mock is True
    assert run_log.steps["patched"].mock is False
    assert run_log.parameters == {"p": 1}


def test_run_ids_are_generated(project: Path) -> None:
    run_log = execute(write(project, {"a": {"type": "stub", "next": "success"}}, "a"), "config.yaml")
    adjective, name, clock, suffix = run_log.run_id.split("-")
    assert adjective.isalpha() and name.isalpha() and len(clock) == 4 and clock.isdigit()
    assert len(suffix) == 6 and set(suffix) <= set("0123456789abcdef"), "24 random bits, in hex"


def test_existing_run_id_is_refused(project: Path) -> None:
    from magnus.errors import RunLogExistsError

    pipeline = write(project, {"a": {"type": "stub", "next": "success"}}, "a")
    execute(pipeline, "config.yaml", run_id="same")
    with pytest.raises(RunLogExistsError):
        execute(pipeline, "config.yaml", run_id="same")


def test_workers_need_a_store_several_processes_can_write(project: Path) -> None:
    from magnus.errors import ConfigurationError

    (project / "workers.yaml").write_text("executor:\n  type: local\n  config:\n    max_workers: 2\n")
    with pytest.raises(
        ConfigurationError,
        match="run_log_store 'buffered' keeps its state in one process, but executor 'local' runs steps in 2 worker",
    ):
        execute(write(project, {"a": {"type": "stub", "next": "success"}}, "a"), "workers.yaml", run_id="w")


def test_run_id_from_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGNUS_RUN_ID", "from-env")
    run_log = execute(write(project, {"a": {"type": "stub", "next": "success"}}, "a"), "config.yaml")
    assert run_log is not None and run_log.run_id == "from-env"


def test_interactive_session(project: Path) -> None:
    """magnus 0.5.1's notebook-side session: the interaction API records into a run of its own."""
    import magnus

    (project / "params.yaml").write_text("x: 1\n")
    magnus.start_interactive_session(run_id="interactive-run", config_file="config.yaml", parameters_file="params.yaml")
    assert magnus.get_parameter("x") == 1
    magnus.set_parameter(y=2)
    magnus.track_this(score=0.5)
    magnus.end_interactive_session()
    stored = json.loads((project / ".run_log_store" / "interactive-run.json").read_text())
    assert stored["status"] == "SUCCESS"
    assert stored["parameters"] == {"x": 1, "y": 2}
    assert stored["steps"]["interactive"]["user_defined_metrics"] == {"score": 0.5}
    assert stored["steps"]["interactive"]["status"] == "SUCCESS"


def test_the_timeline_labels_a_map_item_by_its_whole_value() -> None:
    """A map item ``0.01`` is ``[0.01]`` in the report's timeline (it was ``[01]``: the text after the last dot)."""
    from magnus.datastore.models import BranchLog, RunLog, StepAttempt, StepLog
    from magnus.runs.timeline import bars

    attempt = StepAttempt(
        status="SUCCESS", start_time="2026-12-06 10:00:00.000000", end_time="2026-12-06 10:00:01.000000"
    )
    work = StepLog(name="work", internal_name="m.0.01.work", status="SUCCESS", attempts=[attempt])
    branch = BranchLog(internal_name="m.0.01", status="SUCCESS", steps={"m.0.01.work": work})
    mapped = StepLog(name="m", internal_name="m", status="SUCCESS", branches={"m.0.01": branch})
    run_log = RunLog(run_id="r", status="SUCCESS", steps={"m": mapped})
    assert [bar.label for bar in bars(run_log)] == ["m", "work [0.01]"]

"""The execution plan: what a pipeline compiles into, how ``magnus plan`` shows it, and the walk of it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence, Union

import pytest
import yaml

from magnus import defaults
from magnus.entrypoints import execute, load_pipeline
from magnus.executor.base import StepHandlerExecutor
from magnus.runtime.handler import Ended, Handle
from magnus.runtime.units import Unit
from magnus.testing.executor import outcome, run_with_executor
from magnus.testing.pipelines import dag, task

STEPS = """
import os
from pathlib import Path


def noop() -> None:
    pass


def dies_once() -> None:
    if not Path("died").exists():
        Path("died").write_text("")
        os._exit(9)


def breaks_while_flagged() -> None:
    if Path("broken").exists():
        raise ValueError("flagged")
"""


PIPELINE = dag(
    "first",
    {
        "first": task("plan_steps.noop", "both", on_failure="rescue"),
        "both": {
            "type": "parallel",
            "next": "each",
            "branches": {"a": dag("w", {"w": {"type": "stub", "next": "success"}}), "b": dag("w", {"w": task("x.y")})},
        },
        "each": {
            "type": "map",
            "iterate_on": "items",
            "iterate_as": "item",
            "next": "success",
            "branch": dag("w", {"w": task("plan_steps.noop")}),
        },
        "rescue": {"type": "stub", "next": "fail"},
    },
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": PIPELINE}))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "params.yaml").write_text("items: [1, 2]\n")
    return tmp_path


def test_a_pipeline_compiles_into_units_and_their_routes(project: Path) -> None:
    plan = load_pipeline("pipeline.yaml").plan
    kinds = {unit.shown: unit.kind for unit in plan.units.values()}
    assert kinds["first"] == "step" and kinds["success"] == "end"
    assert (kinds["both:fan-out"], kinds["both.a"], kinds["both:fan-in"]) == ("fan-out", "branch", "fan-in")
    assert kinds["each.*"] == "branch" and plan.unit(f"each.{defaults.MAP_PLACEHOLDER}").dynamic
    routes = set(plan.routes())
    assert ("first", "success", "both:fan-out") in routes
    assert ("first", "failure", "rescue") in routes  # on_failure
    assert ("both:fan-out", "success", "both.a") in routes and ("both.a", "ended", "both:fan-in") in routes
    assert ("both:fan-out", "failure", "fail") in routes  # a composite that cannot fan out fails as a step
    assert ("both:fan-in", "success", "each:fan-out") in routes
    assert ("both.b.w", "failure", "both.b.fail") in routes  # a branch's own fail node
    assert plan.start.id == "first"


def test_magnus_plan_prints_the_plan(project: Path) -> None:
    command = [sys.executable, "-m", "magnus", "plan", "-f", "pipeline.yaml"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["first", "step", "success", "->", "both:fan-out,", "failure", "->", "rescue"]
    assert any(line.split()[:3] == ["each.*", "branch", "walks"] and "once per item" in line for line in lines)
    assert any(line.strip().startswith("each.*.w ") for line in lines), "nested units are indented under their branch"
    described = json.loads(subprocess.run([*command, "--format", "json"], capture_output=True, text=True).stdout)
    assert described["start"] == "first"
    assert {
        "id": "both.a",
        "kind": "branch",
        "node": "both",
        "branch": "a",
        "per_item": False,
        "joins": "both:fan-in",
    } in (described["units"])


def test_a_resumed_run_reuses_a_composite_whole_and_goes_on(project: Path) -> None:
    (project / "broken").write_text("")
    pipeline = dag(
        "each",
        {
            "each": {**PIPELINE["steps"]["each"], "next": "last"},
            "last": task("plan_steps.breaks_while_flagged"),
        },
    )
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": pipeline}))
    failed = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id="first")
    assert failed is not None and outcome(failed)["last"] == defaults.FAIL
    (project / "broken").unlink()
    resumed = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id="again", use_cached="first")
    assert resumed is not None and resumed.status == defaults.SUCCESS, outcome(resumed)
    assert resumed.steps["each"].mock and sorted(resumed.steps["each"].branches) == ["each.1", "each.2"]
    assert not resumed.steps["last"].mock


class _Counting(StepHandlerExecutor):
    """A step handler running steps here, handing out handles to poll: how core waits, for tests."""

    service_name = "counting"
    capacity_of: int = 2
    launched: List[str] = []
    _ended: Dict[int, Ended] = {}

    def capacity(self) -> int:
        return self.capacity_of

    def launch(self, unit: Unit) -> Union[Handle, Ended]:
        self.launched.append(unit.name)
        handle = len(self.launched)
        self._ended[handle] = self.run_here(unit)
        return handle

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        assert len(handles) <= self.capacity_of, "never more in flight than the capacity"
        return {handle: self._ended.pop(handle) for handle in handles}


def test_a_step_handler_gets_ready_steps_of_every_branch_up_to_its_capacity(project: Path) -> None:
    from magnus.runtime.services import RunOptions

    options = RunOptions("pipeline.yaml", "config.yaml", "params.yaml", run_id="handled")
    executor = _Counting(launched=[])
    run_log = run_with_executor(executor, load_pipeline("pipeline.yaml"), options)
    assert run_log is not None
    assert outcome(run_log)["both.b.w"] == defaults.FAIL  # x.y does not exist: its branch fails, so the step
    assert executor.launched[:3] == ["first", "both.a.w", "both.b.w"]


def test_a_worker_killed_mid_step_is_launched_again_while_attempts_remain(project: Path) -> None:
    """Core records the death (the exit status) as an attempt and relaunches: once for every engine."""
    (project / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 2\n"
    )
    steps = {"flaky": task("plan_steps.dies_once", max_attempts=2)}
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag("flaky", steps)}))
    run_log = execute("pipeline.yaml", "workers.yaml", run_id="relaunched")
    assert run_log is not None and run_log.status == defaults.SUCCESS
    attempts = run_log.steps["flaky"].attempts
    assert [(attempt.attempt_number, attempt.status) for attempt in attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert attempts[0].message == "its worker process exited with code 9, before recording the step"

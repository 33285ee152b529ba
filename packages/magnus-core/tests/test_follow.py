"""Following a run walked elsewhere from its run log (`magnus.runtime.follow`): the events of a local run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple

import yaml

from magnus import defaults
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.datastore.models import BranchLog, StepAttempt, StepLog
from magnus.entrypoints import load_pipeline
from magnus.runtime.events import RunObserver, RunStarted, StepEnded
from magnus.runtime.follow import RunFollower

PIPELINE = {
    "start_at": "first",
    "steps": {
        "first": {"type": "task", "command": "true", "command_type": "shell", "next": "fan"},
        "fan": {
            "type": "parallel",
            "next": "success",
            "branches": {
                "a": {
                    "start_at": "s",
                    "steps": {
                        "s": {"type": "stub", "next": "success"},
                        "success": {"type": "success"},
                        "fail": {"type": "fail"},
                    },
                },
                "b": {
                    "start_at": "s",
                    "steps": {
                        "s": {"type": "stub", "next": "success"},
                        "success": {"type": "success"},
                        "fail": {"type": "fail"},
                    },
                },
            },
        },
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    },
}


class Seen(RunObserver):
    def __init__(self) -> None:
        self.events: List[Tuple[Any, ...]] = []

    def run_started(self, started: RunStarted) -> None:
        self.events.append(("run_started", started.run_id))

    def step_started(self, name: str, step_type: str, map_variable: Any) -> None:
        self.events.append(("step_started", name))

    def step_ended(self, ended: StepEnded) -> None:
        self.events.append(("step_ended", ended.name, ended.status, ended.reused))

    def branches_started(
        self, name: str, total: int, map_variable: Any, dynamic: bool = False, iterates: bool = False
    ) -> None:
        self.events.append(("branches_started", name, total))

    def branch_ended(self, step: str, branch: str, status: str) -> None:
        self.events.append(("branch_ended", branch, status))

    def run_ended(self, run_id: str, status: str, seconds: float) -> None:
        self.events.append(("run_ended", status))


def _step(name: str, status: str, **fields: Any) -> StepLog:
    attempt = StepAttempt(
        attempt_number=1, status=status, start_time="2026-01-01T00:00:00", end_time="2026-01-01T00:00:02"
    )
    return StepLog(name=name, internal_name=name, status=status, attempts=[attempt], **fields)


def test_each_event_is_told_once_in_order_and_the_end_last(tmp_path: Path) -> None:
    store = FileSystemRunLogStore(log_folder=str(tmp_path))
    seen = Seen()
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": PIPELINE}))
    graph = load_pipeline(str(tmp_path / "pipeline.yaml")).graph
    follower = RunFollower(store, "r", graph, seen)
    assert follower.poll() is None and seen.events == [], "no run log yet: nothing to tell"
    store.create_run_log(run_id="r", status=defaults.PROCESSING)
    store.add_step_log("r", _step("first", defaults.PROCESSING))
    assert follower.poll() is None
    assert seen.events == [("run_started", "r"), ("step_started", "first")]
    # between two reads: first ended, fan started and one branch ended, a reused step would say so
    store.add_step_log("r", _step("first", defaults.SUCCESS))
    fan = _step("fan", defaults.PROCESSING, step_type="parallel")
    fan.branches = {
        "fan.a": BranchLog(internal_name="fan.a", status=defaults.SUCCESS),
        "fan.b": BranchLog(internal_name="fan.b", status=defaults.PROCESSING),
    }
    store.add_step_log("r", fan)
    assert follower.poll() is None
    assert seen.events[2:] == [
        ("step_ended", "first", "SUCCESS", False),
        ("step_started", "fan"),
        ("branches_started", "fan", 2),
        ("branch_ended", "fan.a", "SUCCESS"),
    ]
    fan.status = defaults.SUCCESS
    fan.branches["fan.b"].status = defaults.SUCCESS
    store.add_step_log("r", fan)
    store.update_run_log_status("r", defaults.SUCCESS)
    assert follower.poll() == defaults.SUCCESS
    assert seen.events[6:] == [
        ("branch_ended", "fan.b", "SUCCESS"),
        ("step_ended", "fan", "SUCCESS", False),
        ("run_ended", "SUCCESS"),
    ]
    assert follower.poll() == defaults.SUCCESS and len(seen.events) == 9, "the end is told once"

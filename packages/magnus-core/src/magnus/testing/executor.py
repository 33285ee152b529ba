"""The promises of an executor, as tests: reference pipelines must end as they do locally.

An executor under test runs each pipeline below from a fresh project folder; the suite checks the
run log's outcome (status of every step and branch, final parameters, metrics).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, ClassVar, Dict

import pytest
import yaml

from magnus import defaults
from magnus.datastore.models import RunLog, StepLog

STEPS_MODULE = '''
"""Functions of the executor contract's pipelines."""
from pathlib import Path

from pydantic import BaseModel

import magnus


class Doubled(BaseModel):
    doubled: int


def first(x: int) -> dict:
    return {"y": x + 1}


def second(y: int) -> Doubled:
    magnus.track_this(seen_y=y)
    return Doubled(doubled=y * 2)


def per_item(item: int) -> dict:
    return {f"seen_{item}": item * 10}


def branch_a() -> dict:
    return {"from_a": "a"}


def branch_b() -> dict:
    return {"from_b": "b"}


def breaks() -> None:
    raise ValueError("broken on purpose")


def breaks_while_flagged() -> None:
    if Path("broken.flag").exists():
        raise ValueError("flagged as broken")


def recover() -> dict:
    return {"recovered": True}
'''

TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def _task(command: str, next_step: str = "success", **extra: Any) -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": next_step, **extra}


def _dag(start_at: str, steps: Dict[str, Any]) -> Dict[str, Any]:
    return {"start_at": start_at, "steps": {**steps, **TERMINALS}}


PIPELINES: Dict[str, Dict[str, Any]] = {
    "linear": _dag(
        "first",
        {"first": _task("contract_steps.first", "second"), "second": _task("contract_steps.second")},
    ),
    "shell": _dag(
        "echo",
        {
            "echo": _task(
                'test "$MAGNUS_PRM_x" = "1" && export MAGNUS_PRM_from_shell="shell says hi"',
                command_type="shell",
            )
        },
    ),
    "parallel": _dag(
        "both",
        {
            "both": {
                "type": "parallel",
                "next": "success",
                "branches": {
                    "a": _dag("work", {"work": _task("contract_steps.branch_a")}),
                    "b": _dag("work", {"work": _task("contract_steps.branch_b")}),
                },
            }
        },
    ),
    "map": _dag(
        "each",
        {
            "each": {
                "type": "map",
                "iterate_on": "items",
                "iterate_as": "item",
                "next": "success",
                "branch": _dag("work", {"work": _task("contract_steps.per_item")}),
            }
        },
    ),
    "on_failure": _dag(
        "breaks",
        {
            "breaks": _task("contract_steps.breaks", on_failure="recover"),
            "recover": _task("contract_steps.recover"),
        },
    ),
    "failing": _dag("breaks", {"breaks": _task("contract_steps.breaks")}),
    "resumable": _dag(
        "first",
        {
            "first": _task("contract_steps.first", "flaky"),
            "flaky": _task("contract_steps.breaks_while_flagged", "second"),
            "second": _task("contract_steps.second"),
        },
    ),
}


def outcome(run_log: RunLog) -> Dict[str, str]:
    """``{internal name: status}`` of every step and branch of a run, for comparing executors."""
    found: Dict[str, str] = {}

    def visit(steps: Dict[str, StepLog]) -> None:
        for name, step in steps.items():
            found[name] = step.status
            for branch_name, branch in step.branches.items():
                found[branch_name] = branch.status
                visit(branch.steps)

    visit(run_log.steps)
    return found


class ExecutorContract:
    """Subclass and provide ``configuration``: the config file mapping to run the pipelines with.

    The executor's run log store must be readable from this process after the run.
    """

    # The configured store keeps run logs on disk, so a failed run can be resumed.
    resumable: ClassVar[bool] = True

    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        raise NotImplementedError("provide a configuration fixture")

    @pytest.fixture
    def project(self, tmp_path: Path, monkeypatch: Any) -> Path:
        folder = tmp_path / "project"
        folder.mkdir()
        (folder / "contract_steps.py").write_text(textwrap.dedent(STEPS_MODULE))
        (folder / "parameters.yaml").write_text("x: 1\nitems: [1, 2, 3]\n")
        monkeypatch.chdir(folder)
        return folder

    def run(
        self, project: Path, configuration: Dict[str, Any], pipeline: str, run_id: str, use_cached: str = ""
    ) -> RunLog:
        """Run one of :data:`PIPELINES` with the executor under test; return its run log."""
        from magnus.entrypoints import execute

        (project / f"{pipeline}.yaml").write_text(yaml.safe_dump({"dag": PIPELINES[pipeline]}))
        (project / "config.yaml").write_text(yaml.safe_dump(configuration))
        run_log = execute(
            f"{pipeline}.yaml",
            configuration_file="config.yaml",
            parameters_file="parameters.yaml",
            run_id=run_id,
            use_cached=use_cached,
        )
        assert run_log is not None, "the executor under test must run the pipeline, not hand it over"
        return run_log

    def test_linear_parameters_flow(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "linear", "linear-1")
        assert run_log.status == defaults.SUCCESS
        assert outcome(run_log) == {"first": "SUCCESS", "second": "SUCCESS", "success": "SUCCESS"}
        assert run_log.parameters == {"x": 1, "items": [1, 2, 3], "y": 2, "doubled": 4}
        assert run_log.steps["second"].user_defined_metrics == {"seen_y": 2}
        attempt = run_log.steps["first"].attempts[0]
        assert attempt.attempt_number == 1 and attempt.start_time <= attempt.end_time

    def test_shell_parameters(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "shell", "shell-1")
        assert run_log.status == defaults.SUCCESS
        assert run_log.parameters["from_shell"] == "shell says hi"

    def test_parallel(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "parallel", "parallel-1")
        assert run_log.status == defaults.SUCCESS
        results = outcome(run_log)
        for branch in ("both.a", "both.b"):
            assert results[branch] == "SUCCESS"
            assert results[f"{branch}.work"] == "SUCCESS"
        assert run_log.parameters["from_a"] == "a" and run_log.parameters["from_b"] == "b"

    def test_map(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "map", "map-1")
        assert run_log.status == defaults.SUCCESS
        assert sorted(run_log.steps["each"].branches) == ["each.1", "each.2", "each.3"]
        assert outcome(run_log)["each.2.work"] == "SUCCESS"
        assert [run_log.parameters[f"seen_{item}"] for item in (1, 2, 3)] == [10, 20, 30]

    def test_on_failure_route(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "on_failure", "on-failure-1")
        assert outcome(run_log) == {"breaks": "FAIL", "recover": "SUCCESS", "success": "SUCCESS"}
        assert run_log.status == defaults.SUCCESS
        assert "broken on purpose" in run_log.steps["breaks"].message

    def test_failing_step_fails_the_run(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "failing", "failing-1")
        assert run_log.status == defaults.FAIL
        assert outcome(run_log) == {"breaks": "FAIL", "fail": "SUCCESS"}

    def test_resume_with_use_cached(self, project: Path, configuration: Dict[str, Any]) -> None:
        if not self.resumable:
            pytest.skip("the configured run log store does not outlive the run")
        (project / "broken.flag").write_text("")
        failed = self.run(project, configuration, "resumable", "resume-1")
        assert failed.status == defaults.FAIL
        (project / "broken.flag").unlink()
        resumed = self.run(project, configuration, "resumable", "resume-2", use_cached="resume-1")
        assert resumed.status == defaults.SUCCESS
        assert (resumed.use_cached, resumed.original_run_id) == (True, "resume-1")
        assert resumed.steps["first"].mock is True
        assert resumed.steps["flaky"].mock is False
        assert resumed.steps["second"].status == defaults.SUCCESS
        assert resumed.parameters["doubled"] == 4

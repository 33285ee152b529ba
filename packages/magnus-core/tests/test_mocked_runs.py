"""A mocked run (``executor: {type: mocked}``) never reads as a real one: its progress lines, its
summary and its steps read back from Python say it was mocked; CLI and SDK side by side."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import List

import pytest

import magnus
from magnus import Pipeline, Task
from magnus.testing.pipelines import run_magnus

STEPS = """
from pathlib import Path


def first() -> None:
    Path("first.ran").touch()


def second() -> None:
    Path("second.ran").touch()
"""

MOCKED = "executor:\n  type: mocked\nrun_log_store:\n  type: file-system\n"
PATCH = "executor:\n  type: mocked\n  config:\n    patches:\n      second: {}\nrun_log_store:\n  type: file-system\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAGNUS_CONFIG_FILE", raising=False)
    (tmp_path / "mocked_steps.py").write_text(STEPS)
    (tmp_path / "mocked.yaml").write_text(MOCKED)
    (tmp_path / "patched.yaml").write_text(PATCH)
    (tmp_path / "real.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent(
            """
            dag:
              start_at: first
              steps:
                first: {type: task, command: mocked_steps.first, next: second}
                second: {type: task, command: mocked_steps.second, next: success}
                success: {type: success}
                fail: {type: fail}
            """
        )
    )
    return tmp_path


def pipeline() -> Pipeline:
    first = Task(name="first", command="mocked_steps.first")
    second = Task(name="second", command="mocked_steps.second", terminate_with_success=True)
    first >> second
    return Pipeline(start_at=first, steps=[first, second], add_terminal_nodes=True)


def progress(stderr: str) -> List[str]:
    """The lines of a run's progress, durations as ``Ns`` (they vary)."""
    return [re.sub(r"\d+\.\d+s", "Ns", line) for line in stderr.splitlines()]


MOCKED_LINES = [
    "run mocked started",
    "  first started",
    "  first SUCCESS (mocked) in Ns",
    "  second started",
    "  second SUCCESS (mocked) in Ns",
    "run mocked SUCCESS (mocked run: no command ran) in Ns, run log: .run_log_store/mocked.json",
]


def test_cli_marks_mocked_steps_and_run(project: Path) -> None:
    result = run_magnus("execute", "-c", "mocked.yaml", "--run-id", "mocked", cwd=project, isolated=True)
    assert result.returncode == 0, result.stderr
    assert progress(result.stderr) == MOCKED_LINES
    assert not (project / "first.ran").exists()


def test_sdk_marks_mocked_steps_and_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline().execute(configuration_file="mocked.yaml", run_id="mocked")
    assert progress(capsys.readouterr().err) == MOCKED_LINES
    assert not (project / "first.ran").exists()


def test_only_patched_steps_ran_says_so(project: Path) -> None:
    result = run_magnus("execute", "-c", "patched.yaml", "--run-id", "patched", cwd=project, isolated=True)
    assert result.returncode == 0, result.stderr
    lines = progress(result.stderr)
    assert "  first SUCCESS (mocked) in Ns" in lines and "  second SUCCESS in Ns" in lines
    assert lines[-1].startswith("run patched SUCCESS (mocked run: only patched steps ran) in Ns")
    assert (project / "second.ran").exists() and not (project / "first.ran").exists()


def test_a_real_run_carries_no_mark(project: Path) -> None:
    result = run_magnus("execute", "-c", "real.yaml", "--run-id", "real", cwd=project, isolated=True)
    assert result.returncode == 0, result.stderr
    assert "mocked" not in result.stderr
    assert progress(result.stderr)[-1] == "run real SUCCESS in Ns, run log: .run_log_store/real.json"


def test_mocked_runs_read_back_as_mocked(project: Path) -> None:
    for config, run_id in (("mocked.yaml", "mocked"), ("real.yaml", "real")):
        result = run_magnus("execute", "-c", config, "--run-id", run_id, "-q", cwd=project, isolated=True)
        assert result.returncode == 0, result.stderr
    mocked, real = magnus.Run("mocked"), magnus.Run("real")
    assert mocked.mocked and mocked.steps["first"].mocked and not mocked.steps["first"].reused
    assert not real.mocked and not real.steps["first"].mocked

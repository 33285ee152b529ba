"""A task that ends the interpreter it runs in fails its step; the command exits 1, never 0.

``os._exit``, a segfault or a shell killing magnus's process end whatever runs in that process.
The commands running user code run it in a child their process watches (``magnus.supervision``):
the watching process records the step FAIL (and, for a whole run, the run) and exits 1. Tested on
``python -m magnus`` processes, as a user runs them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict

import pytest

from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.testing.pipelines import read_run_log, run_magnus, task, write_pipeline

STEPS = """
import ctypes
import os


def ok() -> None:
    print("ok")


def exits_zero() -> None:
    print("about to end the interpreter", flush=True)
    os._exit(0)


def segfaults() -> None:
    ctypes.string_at(0)
"""

FILE_SYSTEM = "run_log_store:\n  type: file-system\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "fs.yaml").write_text(FILE_SYSTEM)
    return tmp_path


def chain(project: Path, command: str, **dying: str) -> str:
    """ok -> dies (``command``) -> after; ``dying``: more fields of the dying step."""
    steps: Dict[str, Dict[str, str]] = {
        "first": task("steps.ok", "dies"),
        "dies": task(command, "after", **dying),
        "after": task("steps.ok"),
    }
    return write_pipeline(project, steps, "first")


@pytest.mark.parametrize(
    ("command", "fields", "how"),
    [
        ("steps.exits_zero", {}, "exited with code 0"),
        ("steps.segfaults", {}, "was killed by SIGSEGV"),
        ("kill -KILL $PPID", {"command_type": "shell"}, "was killed by SIGKILL"),
    ],
    ids=["os._exit(0)", "segfault", "shell-kills-magnus"],
)
def test_a_step_ending_the_interpreter_fails_the_run(
    project: Path, command: str, fields: Dict[str, str], how: str
) -> None:
    pipeline = chain(project, command, **fields)
    result = run_magnus("execute", "-f", pipeline, "-c", "fs.yaml", "--run-id", "died", cwd=project, isolated=True)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: step 'dies' of run 'died': its process {how}, before recording its end; recorded FAIL in the run log"
    ]
    assert "Traceback" not in result.stderr
    run_log = read_run_log(project, "died")
    assert run_log["status"] == "FAIL"
    assert run_log["steps"]["first"]["status"] == "SUCCESS"
    dies = run_log["steps"]["dies"]
    assert dies["status"] == "FAIL"
    assert dies["message"] == f"its process {how}, before recording the step"
    assert dies["attempts"][-1]["status"] == "FAIL"
    assert "after" not in run_log["steps"]


def test_the_run_it_ended_resumes(project: Path) -> None:
    run_magnus(
        "execute",
        "-f",
        chain(project, "steps.exits_zero"),
        "-c",
        "fs.yaml",
        "--run-id",
        "died",
        cwd=project,
        isolated=True,
    )
    fixed = chain(project, "steps.ok")
    result = run_magnus(
        "execute", "-f", fixed, "-c", "fs.yaml", "--run-id", "again", "--use-cached", "died", cwd=project, isolated=True
    )
    assert result.returncode == 0, result.stderr
    run_log = read_run_log(project, "again")
    assert run_log["steps"]["first"]["mock"] is True  # reused
    assert run_log["steps"]["dies"]["status"] == "SUCCESS"


def test_with_the_run_log_in_memory_the_command_still_fails(project: Path) -> None:
    result = run_magnus(
        "execute", "-f", chain(project, "steps.exits_zero"), "--run-id", "memory", cwd=project, isolated=True
    )
    assert result.returncode == 1
    assert (
        "Error: step 'dies' of run 'memory': its process exited with code 0, before recording its end "
        "(its run log was kept in that process)" in result.stderr
    )


def test_one_step_of_a_run_walked_elsewhere(project: Path) -> None:
    """An engine's pod (``execute_single_node``) whose step ends the interpreter: exit 1, the step FAIL."""
    pipeline = chain(project, "steps.exits_zero")
    result = run_magnus("execute_single_node", "pod-run", pipeline, "dies", "-c", "fs.yaml", cwd=project, isolated=True)
    assert result.returncode == 1
    assert "Error: step 'dies' of run 'pod-run': its process exited with code 0" in result.stderr
    run_log = FileSystemRunLogStore(log_folder=str(project / ".run_log_store")).get_run_log_by_id("pod-run")
    assert run_log.steps["dies"].status == "FAIL"
    assert run_log.status == "PROCESSING"  # the run goes on: the engine routes the failure


def test_a_single_function_run(project: Path) -> None:
    result = run_magnus(
        "execute_function", "steps.exits_zero", "-c", "fs.yaml", "--run-id", "fn", cwd=project, isolated=True
    )
    assert result.returncode == 1
    assert read_run_log(project, "fn")["status"] == "FAIL"

"""How the local executor runs a pipeline, in real processes: commands checked before the first
step, one pool of workers at every depth, map results merged in iteration order."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml

TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}

STEPS = '''
import json
import os
import time
from pathlib import Path


def mark(name: str) -> None:
    """Leave a trace that this step ran."""
    Path("ran").mkdir(exist_ok=True)
    Path("ran", name).write_text("")


def first() -> None:
    mark("first")


def timed(item: str, branch: str = "", hold: float = 0.4) -> None:
    """Record when this item started and ended (wall clock), and in which process."""
    start = time.time()
    time.sleep(hold)
    Path("times").mkdir(exist_ok=True)
    Path("times", f"{branch}{item}.json").write_text(json.dumps([start, time.time(), os.getpid()]))


def slow_first(item: int, count: int) -> dict:
    """Later items finish first: iteration 0 sleeps longest."""
    time.sleep(0.15 * (count - item))
    return {"last": item, "square": item * item}
'''


def magnus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "magnus", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "exec_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 4\n"
    )
    return tmp_path


def dag(steps: Dict[str, Any], start_at: str) -> Dict[str, Any]:
    return {"start_at": start_at, "steps": {**steps, **TERMINALS}}


def task(command: str, next_step: str = "success") -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": next_step}


def write(project: Path, steps: Dict[str, Any], start_at: str, parameters: Optional[Dict[str, Any]] = None) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag(steps, start_at)}))
    (project / "parameters.yaml").write_text(yaml.safe_dump(parameters or {}))


def run_log(project: Path, run_id: str) -> Dict[str, Any]:
    loaded: Dict[str, Any] = json.loads((project / ".run_log_store" / f"{run_id}.json").read_text())
    return loaded


# ---- commands checked before the first step ------------------------------------------------------------
def _in_map(command: str) -> Dict[str, Any]:
    return {
        "type": "map",
        "iterate_on": "items",
        "iterate_as": "item",
        "branch": dag({"work": task(command)}, "work"),
        "next": "success",
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("exec_stepz.timed", "cannot import 'exec_stepz' for command 'exec_stepz.timed': No module named 'exec_stepz'"),
        ("exec_steps.timd", "module 'exec_steps' has no attribute 'timd' (command 'exec_steps.timd')"),
    ],
)
@pytest.mark.parametrize("executor", ["config.yaml", "mocked"])
def test_a_misspelt_command_in_a_map_branch_is_refused_before_any_step_runs(
    project: Path, command: str, says: str, executor: str
) -> None:
    if executor == "mocked":
        (project / "mocked.yaml").write_text("run_log_store:\n  type: file-system\nexecutor:\n  type: mocked\n")
        executor = "mocked.yaml"
    write(project, {"first": task("exec_steps.first", "each"), "each": _in_map(command)}, "first", {"items": [1, 2]})
    done = magnus("execute", "-f", "pipeline.yaml", "-c", executor, "-p", "parameters.yaml", cwd=project)
    assert done.returncode == 2
    assert done.stderr.strip() == f"Error: step 'each.*.work': {says} (working folder {project})"
    assert not (project / "ran").exists()  # the step before it did not run
    assert not (project / ".run_log_store").exists()  # nor was the run started


def test_the_check_imports_each_module_once_for_the_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing to check is the run's import: the module's top level runs once, in the check."""
    from magnus.entrypoints import execute

    (project / "counted.py").write_text(
        "from pathlib import Path\n"
        "Path('imports').open('a').write('x')\n"
        "def step() -> None:\n    Path('calls').open('a').write('x')\n"
    )
    monkeypatch.chdir(project)
    write(project, {"a": task("counted.step", "b"), "b": task("counted.step")}, "a")
    log = execute("pipeline.yaml", "config.yaml", run_id="once")
    assert log is not None and log.status == "SUCCESS"
    assert ((project / "imports").read_text(), (project / "calls").read_text()) == ("x", "xx")

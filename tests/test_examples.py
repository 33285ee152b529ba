"""Every example under examples/ runs end to end, as a user would run it, from the repository root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the examples, so run products stay out of the repository."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args], cwd=workdir, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )


def magnus(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(workdir, sys.executable, "-m", "magnus", *args, env=env)


def run_log(workdir: Path, run_id: str) -> dict:
    return json.loads((workdir / ".run_log_store" / f"{run_id}.json").read_text())


def test_yaml_pipeline(workdir: Path) -> None:
    result = magnus(
        workdir,
        "execute",
        "-f",
        "examples/pipeline.yaml",
        "-p",
        "examples/parameters.yaml",
        "-c",
        "examples/configs/file-system.yaml",
        "--run-id",
        "yaml-run",
    )
    assert result.returncode == 0, result.stderr
    assert "the shell step said 'hello from the shell'" in result.stdout
    log = run_log(workdir, "yaml-run")
    assert log["status"] == "SUCCESS"
    branches = log["steps"]["process"]["branches"]["process.chunks"]["steps"]["process.chunks.each chunk"]["branches"]
    assert sorted(branches) == [f"process.chunks.each chunk.{n}" for n in (1, 2, 3, 4)]
    assert log["steps"]["train"]["user_defined_metrics"]["loss"] == {"0": 1.0, "1": 0.5, "2": 0.3333}
    assert log["parameters"]["model_version"] == "v1"


def test_sdk_pipeline(workdir: Path) -> None:
    result = run(workdir, sys.executable, "-m", "examples.sdk_pipeline")
    assert result.returncode == 0, result.stderr
    assert "ended SUCCESS" in result.stdout


def test_default_configuration(workdir: Path) -> None:
    result = magnus(workdir, "execute", "-f", "examples/pipeline.yaml", "-p", "examples/parameters.yaml")
    assert result.returncode == 0, result.stderr


def test_mocked_dry_run(workdir: Path) -> None:
    result = magnus(
        workdir,
        "execute",
        "-f",
        "examples/pipeline.yaml",
        "-p",
        "examples/parameters.yaml",
        "-c",
        "examples/configs/mocked.yaml",
        "--run-id",
        "dry",
    )
    assert result.returncode == 0, result.stderr
    log = run_log(workdir, "dry")
    assert log["steps"]["prepare"]["mock"] is True
    assert "report patched" in result.stdout


def test_resume_example(workdir: Path) -> None:
    common = ["-f", "examples/resume.yaml", "-p", "examples/parameters.yaml", "-c", "examples/configs/file-system.yaml"]
    failed = magnus(workdir, "execute", *common, "--run-id", "first-try")
    assert failed.returncode == 1
    assert "ended FAIL at step 'fetch'" in failed.stderr
    resumed = magnus(
        workdir, "execute", *common, "--run-id", "second-try", "--use-cached", "first-try", env={"EXAMPLE_FIXED": "1"}
    )
    assert resumed.returncode == 0, resumed.stderr
    log = run_log(workdir, "second-try")
    assert log["original_run_id"] == "first-try"
    assert log["steps"]["prepare"]["mock"] is True and log["steps"]["fetch"]["mock"] is False


def test_map_reducer_example(workdir: Path) -> None:
    """examples/map_reduce.yaml with workers: the scores listed in chunk order."""
    (workdir / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 2\n"
    )
    result = magnus(
        workdir,
        "execute",
        "-f",
        "examples/map_reduce.yaml",
        "-p",
        "examples/parameters.yaml",
        "-c",
        "workers.yaml",
        "--run-id",
        "reduced",
    )
    assert result.returncode == 0, result.stderr
    assert "scores by chunk: {1: 10, 2: 20, 3: 30, 4: 40}" in result.stdout
    assert run_log(workdir, "reduced")["parameters"]["score"] == [10, 20, 30, 40]

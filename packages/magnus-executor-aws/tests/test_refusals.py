"""What ``magnus execute -c aws.yaml`` refuses before anything is submitted: one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

PIPELINE = {
    "dag": {
        "start_at": "hello",
        "steps": {
            "hello": {"type": "task", "command_type": "shell", "command": "echo hi", "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
}
EXECUTOR = {"job_queue": "magnus-queue", "image": "team/project:v3"}


def _execute(folder: Path, configuration: Dict[str, Any]) -> "subprocess.CompletedProcess[str]":
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(PIPELINE))
    (folder / "aws.yaml").write_text(yaml.safe_dump(configuration))
    return subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "pipeline.yaml", "-c", "aws.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("missing", ["job_queue", "image"])
def test_a_missing_job_queue_or_image_is_one_line(tmp_path: Path, missing: str) -> None:
    config = {key: value for key, value in EXECUTOR.items() if key != missing}
    done = _execute(tmp_path, {"executor": {"type": "aws-step-functions", "config": config}})
    assert done.returncode == 2
    assert done.stderr == f"Error: aws.yaml: executor.config.{missing}: required field is missing\n"


@pytest.mark.parametrize(
    ("stores", "said"),
    [
        (
            {"run_log_store": {"type": "file-system"}},
            "run_log_store 'file-system': folder '.run_log_store' is on this machine",
        ),
        ({}, "run_log_store 'buffered' keeps its state in one process"),
    ],
)
def test_stores_the_jobs_cannot_reach_are_refused_before_submitting(
    tmp_path: Path, stores: Dict[str, Any], said: str
) -> None:
    done = _execute(tmp_path, {"executor": {"type": "aws-step-functions", "config": EXECUTOR}, **stores})
    assert done.returncode == 2
    assert done.stderr.startswith(f"Error: {said}") and done.stderr.count("\n") == 1
    assert "s3://" in done.stderr, "the line points to stores every job reaches"
    assert not (tmp_path / ".run_log_store").exists(), "nothing was written"

"""A run with nothing on the local disk: run logs (chunked-fs) and data (fsspec catalog) in one S3 bucket.

moto's S3 server over real HTTP; ``magnus execute`` as a user runs it, reaching the bucket through
the standard AWS environment, as pods on a cluster without a shared volume would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from magnus.testing.s3 import S3Server
from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore

STEPS = """
import os
from pathlib import Path

import magnus


def make() -> dict:
    Path("data").mkdir(exist_ok=True)
    Path("data/rows.csv").write_text("a,b\\n1,2\\n")
    magnus.put_object({"weights": [1, 2]}, "model")
    return {"items": ["x", "y"]}


def each(item: str) -> None:
    if item == "y" and os.path.exists("broken.flag"):
        raise RuntimeError("broken on purpose")
    Path("out").mkdir(exist_ok=True)
    Path(f"out/{item}.txt").write_text(item)


def use() -> None:
    assert Path("data/rows.csv").read_text() == "a,b\\n1,2\\n"
    assert magnus.get_object("model") == {"weights": [1, 2]}
"""


def _pipeline() -> dict:
    branch = {
        "start_at": "each",
        "steps": {
            "each": {"type": "task", "command": "bucket_steps.each", "next": "success", "catalog": {"put": ["out/*"]}},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    steps = {
        "make": {"type": "task", "command": "bucket_steps.make", "next": "over", "catalog": {"put": ["data/*"]}},
        "over": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "clean"},
        "clean": {"type": "task", "command_type": "shell", "command": "rm -r data", "next": "use"},
        "use": {"type": "task", "command": "bucket_steps.use", "next": "success", "catalog": {"get": ["data/*"]}},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    return {"dag": {"start_at": "make", "steps": steps}}


@pytest.mark.slow
def test_a_run_lives_in_the_bucket_and_resumes(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    (tmp_path / "bucket_steps.py").write_text(STEPS)
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(_pipeline()))
    config = {
        "run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"s3://{s3_bucket}/runs"}},
        "catalog": {"type": "fsspec", "config": {"location": f"s3://{s3_bucket}/catalog"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "broken.flag").write_text("")

    def execute(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "magnus", "execute", "-f", "pipeline.yaml", "-c", "config.yaml", *extra]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)

    failed = execute("--run-id", "first")
    assert failed.returncode == 1, failed.stderr
    (tmp_path / "broken.flag").unlink()
    resumed = execute("--run-id", "second", "--use-cached", "first")
    assert resumed.returncode == 0, resumed.stderr

    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/runs")
    first, second = store.get_run_log_by_id("first"), store.get_run_log_by_id("second")
    assert (first.status, second.status) == ("FAIL", "SUCCESS")
    assert second.steps["make"].mock is True, "the step that succeeded before is reused"
    assert first.steps["over"].branches["over.x"].status == "SUCCESS"
    assert second.steps["over"].branches["over.y"].status == "SUCCESS"
    assert second.run_config["catalog_handler"]["service_name"] == "fsspec"

    keys = s3_server.keys(s3_bucket)
    assert "runs/second/RunLog.json" in keys and "runs/second/over.branches/y+each.step.json" in keys
    for name in ("data/rows.csv", "model.pickle", "out/x.txt", "out/y.txt", "use.execution.log"):
        assert f"catalog/second/{name}" in keys, name
    assert "catalog/first/out/y.txt" not in keys, "the failed iteration put nothing"
    assert {key.split("/", 1)[0] for key in keys} == {"runs", "catalog"}, "nothing outside the two folders"
    assert not (tmp_path / ".run_log_store").exists() and not (tmp_path / ".catalog").exists()

"""The ray executor with the stores of other packages, on a real two-node Ray cluster.

examples/pipeline.yaml leaves the run log the local run leaves: steps, statuses, parameters,
metrics, objects and the catalog (each step's execution log, put in a ``file-system`` catalog
every node of this machine sees) are compared; only what differs by nature (times, the run id,
where a step ran) is left out. A run keeping everything in an object store needs no shared file
system.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

from magnus.testing.s3 import S3Server

pytestmark = pytest.mark.service
ROOT = Path(__file__).resolve().parents[1]
STORES = {
    "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
    "catalog": {"type": "file-system", "config": {"catalog_location": ".catalog"}},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from magnus_executor_ray.cluster import LocalCluster

    started = LocalCluster(tmp_path_factory.mktemp("ray"))
    previous = {name: os.environ.get(name) for name in started.environment}
    os.environ.update(started.environment)  # for the magnus processes the tests start
    try:
        with started:
            started.add_node("node_b", cpus=1, resources={"node_b": 1})
            yield started
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_example(folder: Path, configuration: Dict[str, Any], run_id: str) -> Dict[str, Any]:
    """examples/pipeline.yaml run by ``magnus execute`` in a copy of examples/; its run log."""
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "config.yaml").write_text(yaml.safe_dump(configuration))
    arguments = ["-f", "examples/pipeline.yaml", "-p", "examples/parameters.yaml", "-c", "config.yaml"]
    done = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", *arguments, "--run-id", run_id],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    run_log: Dict[str, Any] = json.loads((folder / ".run_log_store" / f"{run_id}.json").read_text())
    return run_log


def steps_of(run_log: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """What each step (branches included) recorded that does not depend on when, where, or the run id."""
    found: Dict[str, Dict[str, Any]] = {}

    def visit(steps: Dict[str, Any]) -> None:
        for step in steps.values():
            found[step["internal_name"]] = {
                "status": step["status"],
                "type": step["step_type"],
                "message": step["message"],
                "attempts": [(attempt["status"], attempt["message"]) for attempt in step["attempts"]],
                "metrics": step["user_defined_metrics"],
                "objects": sorted(step.get("objects", {})),
                "catalog": sorted(
                    (entry["name"], entry["stage"], entry["data_hash"]) for entry in step["data_catalog"]
                ),
                "branches": {name: branch["status"] for name, branch in step["branches"].items()},
            }
            for branch in step["branches"].values():
                visit(branch["steps"])

    visit(run_log["steps"])
    return found


def catalog_files(folder: Path, run_id: str) -> List[Tuple[str, bytes]]:
    """The files of the run's catalog folder and their contents."""
    base = folder / ".catalog" / run_id
    return sorted((str(path.relative_to(base)), path.read_bytes()) for path in base.rglob("*") if path.is_file())


def test_the_example_pipeline_on_ray_leaves_the_local_run_log(cluster: Any, tmp_path: Path) -> None:
    local = run_example(tmp_path / "local", STORES, "example")
    executor = {"address": cluster.address, "shared_filesystem": True, "num_cpus": 0.5}
    on_ray = run_example(tmp_path / "ray", {"executor": {"type": "ray", "config": executor}, **STORES}, "example")
    assert on_ray["status"] == local["status"] == "SUCCESS"
    assert steps_of(on_ray) == steps_of(local)
    assert on_ray["parameters"] == local["parameters"]
    assert catalog_files(tmp_path / "ray", "example") == catalog_files(tmp_path / "local", "example")
    assert catalog_files(tmp_path / "local", "example"), "the catalog holds the execution logs"
    ran_on = {step["code_identities"][0].get("ray_node_id") for step in _executed(on_ray["steps"])}
    assert None not in ran_on, "every step run by a Ray task names its node"


def _executed(steps: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    for step in steps.values():
        if step["step_type"] in ("task", "stub"):
            yield step
        for branch in step["branches"].values():
            yield from _executed(branch["steps"])


BUCKET_STEPS = """
from pathlib import Path


def make() -> None:
    Path("data").mkdir(exist_ok=True)
    Path("data/rows.csv").write_text("a,b\\n1,2\\n")


def each(item: str) -> None:
    assert Path("data/rows.csv").read_text().startswith("a,b")
"""


def test_a_run_kept_in_an_object_store_needs_no_shared_file_system(
    cluster: Any, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """Run logs (chunked-fs) and data (fsspec) in S3; the workers reach it through the runtime_env."""
    (tmp_path / "bucket_steps.py").write_text(BUCKET_STEPS)
    get = {"get": ["data/rows.csv"]}
    branch = {
        "start_at": "each",
        "steps": {
            "each": {"type": "task", "command": "bucket_steps.each", "next": "success", "catalog": get},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    steps = {
        "make": {"type": "task", "command": "bucket_steps.make", "next": "over", "catalog": {"put": ["data/*"]}},
        "over": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "make", "steps": steps}}))
    (tmp_path / "parameters.yaml").write_text(yaml.safe_dump({"items": ["x", "y"]}))
    runtime_env = {"env_vars": s3_server.environment(), "working_dir": "."}  # the project, shipped by Ray
    executor = {"address": cluster.address, "runtime_env": runtime_env}
    configuration = {
        "executor": {"type": "ray", "config": executor},
        "run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"s3://{s3_bucket}/runs"}},
        "catalog": {"type": "fsspec", "config": {"location": f"s3://{s3_bucket}/catalog"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(configuration))
    arguments = ["-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "bucket-1"]
    done = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", *arguments], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    keys = s3_server.keys(s3_bucket)
    assert "runs/bucket-1/RunLog.json" in keys and "catalog/bucket-1/data/rows.csv" in keys
    assert {"catalog/bucket-1/each.execution.log_x", "catalog/bucket-1/each.execution.log_y"} <= set(keys), keys
    assert not (tmp_path / ".run_log_store").exists() and not (tmp_path / ".catalog").exists()
    assert not (tmp_path / "data").exists(), "the steps ran in Ray's copy of the project, not in it"

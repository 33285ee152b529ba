"""examples/pipeline.yaml on a real two-node Ray cluster leaves the run log the local run leaves.

Steps, statuses, parameters, metrics, objects and the catalog (each step's execution log, put in
a ``file-system`` catalog every node of this machine sees) are compared; only what differs by
nature (times, the run id, where a step ran) is left out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

pytestmark = pytest.mark.service
ROOT = Path(__file__).resolve().parents[1]
STORES = {
    "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
    "catalog": {"type": "file-system", "config": {"catalog_location": ".catalog"}},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from magnus_executor_ray.cluster import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("ray")) as started:
        started.add_node("node_b", cpus=1, resources={"node_b": 1})
        yield started


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

"""The aws-step-functions executor end to end: moto interprets the state machine, podman runs each Batch job.

No AWS account is reachable here, so the real control flow runs on moto's server
(:mod:`magnus_executor_aws.testing`): ``magnus execute -c aws.yaml`` registers the job definitions,
creates the state machine and starts an execution; moto's States Language interpreter walks it and
runs every ``batch:submitJob.sync`` as a real container of the step image (this checkout's wheels
and the project folder), which runs ``magnus execute_single_node`` / ``magnus fan`` against the run
log (chunked-fs) and the catalog (fsspec) in moto's S3. The run log read back from S3 is compared
with a local run's of the same pipeline, on the same kind of stores.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

from magnus_executor_aws.testing import Emulator, project_image, runtime_image, start_emulator

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
_prefixes = itertools.count()

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    started = start_emulator()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def runtime(emulator: Emulator) -> str:
    """The step image's runtime: magnus-core, this executor and the S3 stores, from this checkout."""
    requirements = [
        str(PACKAGES / "magnus-core"),
        str(PACKAGES / "magnus-executor-aws"),
        str(PACKAGES / "magnus-runlog-chunked"),
        str(PACKAGES / "magnus-catalog-fsspec"),
        "s3fs",  # the [s3] extras, named apart: the pip of Python 3.11's venv cannot resolve a path with extras
    ]
    names = ["magnus-core", "magnus-executor-aws", "magnus-runlog-chunked", "magnus-catalog-fsspec", "s3fs"]
    return runtime_image(ROOT, requirements, names)


class Project:
    """A project folder with the examples, configs for AWS and for a local run, and its image."""

    def __init__(self, folder: Path, emulator: Emulator, runtime: str, name: str) -> None:
        self.folder = folder
        self.emulator = emulator
        self.runtime = runtime
        self.prefix = f"s3://{emulator.bucket}/{name}-{next(_prefixes)}"
        self.image = f"localhost/magnus-aws-project:{name.lower()[:60]}"
        shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__"))

    def stores(self, where: str) -> Dict[str, Any]:
        return {
            "run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"{self.prefix}/{where}/run-logs"}},
            "catalog": {"type": "fsspec", "config": {"location": f"{self.prefix}/{where}/catalog"}},
        }

    def write_configs(self, **executor: Any) -> None:
        config = {
            "job_queue": self.emulator.job_queue,
            "image": self.image,
            "region": self.emulator.region,
            "role_arn": self.emulator.role_arn,
            "iterations_location": f"{self.prefix}/items",
            "environment": self.emulator.environment(),
            "poll_seconds": 1,
            "memory": 512,
            **executor,
        }
        aws = {"executor": {"type": "aws-step-functions", "config": config}, **self.stores("aws")}
        secrets = executor.pop("secrets", None)
        if secrets:
            aws["secrets"] = secrets
        (self.folder / "aws.yaml").write_text(yaml.safe_dump(aws, sort_keys=False))
        (self.folder / "local.yaml").write_text(yaml.safe_dump({"executor": {"type": "local"}, **self.stores("local")}))

    def build(self) -> None:
        project_image(self.runtime, self.folder, ["examples", "aws.yaml"], self.image)

    def magnus(self, *args: str) -> "subprocess.CompletedProcess[str]":
        environment = {**os.environ, **self.emulator.environment()}
        return subprocess.run(
            [sys.executable, "-m", "magnus", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            env=environment,
            timeout=900,
        )

    def run_log(self, where: str, run_id: str) -> Dict[str, Any]:
        """The run log as the store in S3 holds it (read with the store's own reader)."""
        shown = self.magnus("runs", "show", run_id, "-c", f"{where}.yaml", "--json")
        assert shown.returncode == 0, shown.stderr
        document: Dict[str, Any] = json.loads(shown.stdout)
        return document

    def catalog_files(self, where: str, run_id: str) -> List[str]:
        bucket, _, prefix = f"{self.prefix}/{where}/catalog/{run_id}/"[len("s3://") :].partition("/")
        client = self.emulator.client("s3")
        found = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return sorted(item["Key"][len(prefix) :] for item in found)


def _steps(run_log: Dict[str, Any]) -> List[Tuple[str, str]]:
    """Every step of a run log, nested ones included, with its status."""
    found: List[Tuple[str, str]] = []

    def walk(steps: Dict[str, Any]) -> None:
        for step in steps.values():
            found.append((step["internal_name"], step["status"]))
            for branch in step.get("branches", {}).values():
                walk(branch["steps"])

    walk(run_log["steps"])
    return sorted(found)


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator, runtime: str, request: pytest.FixtureRequest) -> Project:
    return Project(tmp_path, emulator, runtime, request.node.name.replace("_", "-"))


def test_the_example_pipeline_runs_as_a_local_run_does(project: Project) -> None:
    """examples/pipeline.yaml (tasks, shell, stub, parallel, map, nested dag) on Step Functions + Batch."""
    project.write_configs()
    project.build()
    common = ["-f", "examples/pipeline.yaml", "-p", "examples/parameters.yaml"]
    local = project.magnus("execute", *common, "-c", "local.yaml", "--run-id", "local-run")
    assert local.returncode == 0, local.stderr
    done = project.magnus("execute", *common, "-c", "aws.yaml", "--run-id", "aws-run")
    assert done.returncode == 0, done.stdout + done.stderr
    # the progress of a local run: a line per step of the pipeline, the summary
    for line in ("prepare SUCCESS", "process SUCCESS", "train SUCCESS", "evaluate SUCCESS", "report SUCCESS"):
        assert line in done.stderr, done.stderr
    assert "run aws-run SUCCESS" in done.stderr
    on_aws, here = project.run_log("aws", "aws-run"), project.run_log("local", "local-run")
    assert on_aws["status"] == here["status"] == "SUCCESS"
    assert _steps(on_aws) == _steps(here)
    assert on_aws["parameters"] == here["parameters"]
    assert project.catalog_files("aws", "aws-run") == project.catalog_files("local", "local-run")

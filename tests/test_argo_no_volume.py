"""Argo without any volume: run logs (``chunked-fs``) and catalog (``fsspec``) in S3.

``examples/configs/argo.yaml`` renders the example pipeline as it would for a cluster; the Argo
emulator runs every container of that manifest as a real ``magnus`` process against moto's S3
server, the S3 keys reaching the processes only as the manifest's references to a Kubernetes
secret (they are not in the environment the processes inherit). The run log read back from S3
ends as the local run's, and the catalog holds the same files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hera.workflows import models as m

from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.testing.executor import outcome
from magnus.testing.s3 import S3Server, s3_server  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
BUCKET = "magnus-examples"  # the bucket examples/configs/argo.yaml names
KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
RENDER = [
    "execute",
    "-f",
    "examples/pipeline.yaml",
    "-p",
    "examples/parameters.yaml",
    "-c",
    "examples/configs/argo.yaml",
]


@pytest.fixture
def workdir(tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:  # noqa: F811
    """A copy of the examples as the image's working directory; the bucket of the example config, empty."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    client = s3_server.client()
    if BUCKET in {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}:
        for key in s3_server.keys(BUCKET):
            client.delete_object(Bucket=BUCKET, Key=key)
    else:
        s3_server.create_bucket(BUCKET)
    yield tmp_path


def workflow_validator() -> Any:
    """Argo's JSON schema of a Workflow (vendored with the argo executor's tests, with its source and licence)."""
    import json

    import jsonschema

    schema = json.loads(
        (ROOT / "packages" / "magnus-executor-argo" / "tests" / "argo-schema" / "workflows-schema.json").read_text()
    )
    workflow = "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"
    return jsonschema.Draft7Validator({**schema, "$ref": workflow})


def magnus(workdir: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-m", "magnus", *args], cwd=workdir, capture_output=True, text=True)


def test_the_example_renders_a_manifest_without_volumes_or_secret_values(workdir: Path) -> None:
    """The excerpts the docs show (tests/golden/argo-no-volume-*.yaml); regenerate with UPDATE_GOLDEN=1.

    The start of the workflow (its arguments) and the whole template of the ``train`` step.
    """
    done = magnus(workdir, *RENDER)
    assert done.returncode == 0, done.stderr
    text = (workdir / "argo-pipeline.yaml").read_text()
    manifest = yaml.safe_load(text)
    head = text[: text.index("  templates:\n")]
    [train] = [t for t in manifest["spec"]["templates"] if t["name"] == "train"]
    excerpts = {
        "start": head,
        "train": yaml.safe_dump([train], sort_keys=False, default_flow_style=False, width=120),
    }
    for name, excerpt in excerpts.items():
        golden = GOLDEN / f"argo-no-volume-{name}.yaml"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(excerpt)
        assert excerpt == golden.read_text()
    assert not [error.message for error in workflow_validator().iter_errors(manifest)][:3]
    again = m.Workflow.model_validate(manifest).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert again == manifest, "hera's models read it back as rendered"
    assert train["retryStrategy"] == {"limit": "2", "retryPolicy": "OnFailure"}
    assert "volumes" not in manifest["spec"]
    for template in manifest["spec"]["templates"]:
        assert "volumeMounts" not in template.get("container", {})
    for key in KEYS:
        assert os.environ[key] not in text


def test_rendering_needs_no_access_to_the_stores(tmp_path: Path) -> None:
    """The laptop that renders the workflow may not reach the cluster's bucket, nor hold its keys."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    unreachable = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    unreachable["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "magnus", *RENDER], cwd=tmp_path, capture_output=True, text=True, env=unreachable
    )
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load((tmp_path / "argo-pipeline.yaml").read_text())["kind"] == "Workflow"


@pytest.mark.slow
def test_the_example_runs_without_a_volume_and_ends_as_the_local_run(
    workdir: Path,
    s3_server: S3Server,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from magnus_executor_argo.emulator import WorkflowEmulator
    from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore

    done = magnus(workdir, *RENDER)
    assert done.returncode == 0, done.stderr
    manifest: Any = yaml.safe_load((workdir / "argo-pipeline.yaml").read_text())
    for key in KEYS:  # from here on the keys reach the pods only through the manifest's secret references
        monkeypatch.delenv(key)
    emulator = WorkflowEmulator(
        manifest,
        workdir=workdir,
        command_prefix=[sys.executable, "-m", "magnus"],
        secrets={
            ("magnus-s3", "access-key-id"): s3_server.access_key_id,
            ("magnus-s3", "secret-access-key"): s3_server.secret_access_key,
        },
    )
    phase = emulator.run()
    failed = [step.output[-800:] for step in emulator.steps if step.phase == "Failed"]
    assert phase == "Succeeded", failed
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    argo = ChunkedFileSystemRunLogStore(log_folder=f"s3://{BUCKET}/run-logs").get_run_log_by_id(emulator.uid)

    # The same pipeline walked here, its run log and catalog in local folders.
    local_run = magnus(workdir, *RENDER[:-1], "examples/configs/file-system.yaml", "--run-id", "local")
    assert local_run.returncode == 0, local_run.stderr
    local = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("local")
    assert outcome(argo) == outcome(local)
    assert (argo.status, argo.parameters) == (local.status, local.parameters)
    assert argo.steps["train"].user_defined_metrics == local.steps["train"].user_defined_metrics
    in_s3 = {key.split("/", 2)[2] for key in s3_server.keys(BUCKET, f"catalog/{emulator.uid}/")}
    in_s3.remove(".magnus-claim")  # the run claimed its id in the catalog before any step (KeyError if not)
    local_catalog = workdir / ".catalog" / "local"
    assert in_s3 == {str(path.relative_to(local_catalog)) for path in local_catalog.rglob("*") if path.is_file()}

"""chunked-fs with ``log_folder`` a URL: the contract on moto's S3 server over HTTP, file:// and memory://."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from conftest import SpoilsParts

from magnus.datastore.models import BranchLog, StepLog
from magnus.errors import ConfigurationError, RunLogExistsError, UserInputError
from magnus.object_store import StoreFolder
from magnus.testing import ExecutorContract, RunLogStoreContract
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.run_log_store import StoreFactory
from magnus.testing.s3 import S3Server
from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore

_memory_numbers = itertools.count()


class TestChunkedStoreOnS3(SpoilsParts, RunLogStoreContract):
    """Real HTTP to moto; writer and claimant processes are forked and reach it through the environment."""

    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, s3_bucket: str) -> StoreFactory:
        return lambda: ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")


class TestChunkedStoreOnFileUrl(SpoilsParts, RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: ChunkedFileSystemRunLogStore(log_folder=f"file://{tmp_path}/logs")


class TestChunkedStoreInMemory(SpoilsParts, RunLogStoreContract):
    """fsspec's memory:// lives in one process: persistent across store objects, not across processes."""

    persistent = True
    concurrent_writers = False

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        folder = f"memory://magnus-tests/logs-{next(_memory_numbers)}"
        return lambda: ChunkedFileSystemRunLogStore(log_folder=folder)


class TestLocalExecutorWithChunkedStoreOnS3(ExecutorContract):
    @pytest.fixture
    def configuration(self, s3_bucket: str) -> Dict[str, Any]:
        return {"run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"s3://{s3_bucket}/logs"}}}


def test_one_object_per_part_under_the_run_folder(s3_server: S3Server, s3_bucket: str) -> None:
    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/team/logs")
    store.create_run_log("run", status="PROCESSING")
    store.set_parameters("run", {"x": 1})
    store.add_step_log("run", StepLog(name="m", internal_name="m", status="PROCESSING", step_type="map"))
    store.add_branch_log("run", BranchLog(internal_name="m.0.5", status="SUCCESS"))
    store.add_step_log("run", StepLog(name="w", internal_name="m.0.5.w", status="SUCCESS"))
    assert s3_server.keys(s3_bucket) == [
        "team/logs/run/RunConfig.json",
        "team/logs/run/RunLog.json",
        "team/logs/run/m.branches/0.5+w.step.json",
        "team/logs/run/m.branches/0.5.branch.json",
        "team/logs/run/m.step.json",
        "team/logs/run/parameters/x.json",
    ]
    for run_id in ("../x", "..", "a/b"):
        with pytest.raises(UserInputError):
            store.create_run_log(run_id)
    assert len(s3_server.keys(s3_bucket)) == 6, "nothing written outside the run's folder"
    assert store.local_paths() == [], "no folder of this machine for executors to mount"


def test_the_claim_is_a_conditional_put(s3_server: S3Server, s3_bucket: str) -> None:
    """A second creator is refused by S3 itself (412 on If-None-Match), and the first run's file is kept."""
    first = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")
    second = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")
    first.create_run_log("run", tag="first")
    with pytest.raises(RunLogExistsError):
        second.create_run_log("run", tag="second")
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="logs/run/RunLog.json")["Body"].read()
    assert json.loads(body)["tag"] == "first"


def test_unchanged_parameters_are_not_fetched_again(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing's ETags tell an unchanged parameter: a map's long list is fetched once per process."""
    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")
    store.create_run_log("run")
    store.set_parameters("run", {"items": list(range(1000)), "other": 1})
    assert store.get_parameters("run")["other"] == 1
    fetched = []
    storage = store._storage
    read = storage.read
    monkeypatch.setattr(storage, "read", lambda path: fetched.append(path) or read(path))
    for _ in range(3):
        assert len(store.get_parameters("run")["items"]) == 1000
    assert fetched == []
    ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs").set_parameters("run", {"other": 2})
    assert store.get_parameters("run")["other"] == 2
    assert [path.rsplit("/", 1)[-1] for path in fetched] == ["other.json"]


def test_reading_a_run_again_fetches_only_the_parts_changed(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a follower polling a map of many items costs: its listings, and the parts that changed."""
    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")
    store.create_run_log("run", status="PROCESSING")
    store.add_step_log("run", StepLog(name="m", internal_name="m", status="PROCESSING", step_type="map"))
    for item in range(5):
        store.add_branch_log("run", BranchLog(internal_name=f"m.{item}", status="PROCESSING"))
        store.add_step_log("run", StepLog(name="w", internal_name=f"m.{item}.w", status="PROCESSING"))
    follower = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")
    assert len(follower.get_run_log_by_id("run").steps["m"].branches) == 5
    assert set(follower.get_branch_statuses("run", "m").values()) == {"PROCESSING"}
    fetched: List[str] = []
    fs = follower._storage.folder.fs  # type: ignore[attr-defined]
    read_one, read_many = fs.cat_file, fs.cat_ranges
    monkeypatch.setattr(fs, "cat_file", lambda path, *a, **k: fetched.append(path) or read_one(path, *a, **k))
    monkeypatch.setattr(fs, "cat_ranges", lambda paths, *a, **k: fetched.extend(paths) or read_many(paths, *a, **k))

    def parts_fetched() -> List[str]:
        return sorted(path.rsplit("/", 1)[-1] for path in fetched if path.endswith((".step.json", ".branch.json")))

    unchanged = follower.get_run_log_by_id("run")
    assert parts_fetched() == []
    assert unchanged.steps["m"].branches["m.3"].steps["m.3.w"].status == "PROCESSING"
    store.update_step_log_status("run", "m.3.w", "SUCCESS")
    store.update_branch_log_status("run", "m.3", "SUCCESS")
    fetched.clear()
    changed = follower.get_run_log_by_id("run")
    assert changed.steps["m"].branches["m.3"].status == "SUCCESS"
    assert changed.steps["m"].branches["m.3"].steps["m.3.w"].status == "SUCCESS"
    assert parts_fetched() == ["3+w.step.json", "3.branch.json"]
    fetched.clear()
    assert follower.get_branch_statuses("run", "m")["m.3"] == "SUCCESS"
    assert parts_fetched() == []


def test_the_store_and_a_catalog_of_one_object_store_share_one_file_system(s3_bucket: str) -> None:
    """A job opens one client for its run log and its catalog (a second costs ~0.1 s of its start)."""
    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs")
    store.create_run_log("run")
    catalog = StoreFolder(f"s3://{s3_bucket}/catalog", {}, "catalog.config.location", "magnus-catalog-fsspec")
    assert store._storage.folder.fs is catalog.fs  # type: ignore[attr-defined]
    assert store.get_run_log_by_id("run").run_id == "run"


def test_storage_options_take_secrets(s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {
        "key": "${key}",
        "secret": "${secret}",
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/logs", storage_options=options)
    with pytest.raises(ConfigurationError, match=r"log_folder: storage_options name secrets \(key, secret\)"):
        store.create_run_log("run")
    store.resolve_secrets({"key": s3_server.access_key_id, "secret": s3_server.secret_access_key}.__getitem__)
    store.create_run_log("run")
    assert s3_server.keys(s3_bucket) == ["logs/run/RunConfig.json", "logs/run/RunLog.json"]
    assert s3_server.secret_access_key not in json.dumps(store.get_summary())


WRITER = """
import sys
from magnus.datastore.models import BranchLog, StepLog
from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore

folder, writer, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = ChunkedFileSystemRunLogStore(log_folder=folder)
branch = f"map.{writer}"
store.add_branch_log("run", BranchLog(internal_name=branch, status="PROCESSING"))
for number in range(steps):
    name = f"{branch}.step{number}"
    store.add_step_log("run", StepLog(name=f"step{number}", internal_name=name, status="SUCCESS"))
    store.set_parameters("run", {f"p_{writer}_{number}": number})
store.add_branch_log("run", BranchLog(internal_name=branch, status="SUCCESS"))
"""


@pytest.mark.slow
def test_separate_interpreters_writing_one_run_on_s3_lose_nothing(tmp_path: Path, s3_bucket: str) -> None:
    """Independent processes (as pods would be), started together, each writing its own branch over HTTP."""
    folder = f"s3://{s3_bucket}/logs"
    store = ChunkedFileSystemRunLogStore(log_folder=folder)
    store.create_run_log("run", status="PROCESSING")
    store.add_step_log("run", StepLog(name="map", internal_name="map", status="PROCESSING", step_type="map"))
    (tmp_path / "writer.py").write_text(WRITER)
    writers, steps = 4, 10
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), folder, str(number), str(steps)])
        for number in range(writers)
    ]
    assert [process.wait(300) for process in processes] == [0] * writers
    elapsed = time.perf_counter() - started
    run_log = store.get_run_log_by_id("run")
    branches = run_log.steps["map"].branches
    assert len(branches) == writers
    assert all(branch.status == "SUCCESS" and len(branch.steps) == steps for branch in branches.values())
    assert len(run_log.parameters) == writers * steps
    print(f"{writers} writers x {steps} steps (+ a parameter each) on moto S3: {elapsed:.1f} s")


PIPELINE_STEPS = """
import os

def prepare() -> dict:
    return {"items": [0, 0.5, 2]}

def work(item: float) -> dict:
    if item == 2 and os.path.exists("broken.flag"):
        raise RuntimeError("broken")
    return {f"done_{item}": item}
"""


@pytest.mark.slow
def test_a_run_on_s3_fails_then_resumes_with_use_cached(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    """``magnus execute`` with the run log in the bucket only: a failed map, then ``--use-cached``."""
    (tmp_path / "steps_on_s3.py").write_text(PIPELINE_STEPS)
    steps = {"prepare": task("steps_on_s3.prepare", "each"), "each": map_of("steps_on_s3.work")}
    write_pipeline(tmp_path, steps, "prepare")
    config = {"run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"s3://{s3_bucket}/runs"}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "broken.flag").write_text("")

    def execute(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "magnus", "execute", "-f", "pipeline.yaml", "-c", "config.yaml", *extra]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)

    assert execute("--run-id", "first").returncode == 1
    (tmp_path / "broken.flag").unlink()
    resumed = execute("--run-id", "second", "--use-cached", "first")
    assert resumed.returncode == 0, resumed.stderr
    store = ChunkedFileSystemRunLogStore(log_folder=f"s3://{s3_bucket}/runs")
    first, second = store.get_run_log_by_id("first"), store.get_run_log_by_id("second")
    assert (first.status, second.status) == ("FAIL", "SUCCESS")
    assert second.steps["prepare"].mock is True
    branches = second.steps["each"].branches
    assert sorted(branches) == ["each.0", "each.0.5", "each.2"]
    assert all(branch.steps[f"{name}.work"].status == "SUCCESS" for name, branch in branches.items())
    assert "runs/second/each.branches/0.5+work.step.json" in s3_server.keys(s3_bucket, "runs/second/")
    assert not (tmp_path / ".run_log_store").exists(), "nothing was written to a local folder"


def test_credentials_in_storage_options_are_masked_whatever_their_shape(tmp_path: Path) -> None:
    """Lists, nested mappings, ``passwd`` and ``auth`` pairs were recorded in clear in the run's config."""
    options = {
        "auth": ["user", "Auth-Pass-1"],
        "headers": {"Authorization": "Bearer Header-Token-2"},
        "passwd": "Passwd-Value-3",
        "token": ["List-Token-4"],
        "profile": "dev",
    }
    folder = f"file://{tmp_path}/logs"
    config = {"run_log_store": {"type": "chunked-fs", "config": {"log_folder": folder, "storage_options": options}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    write_pipeline(tmp_path, {"s": task("echo done", command_type="shell")}, "s")
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "masked"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    written = "".join(path.read_text() for path in (tmp_path / "logs").rglob("*") if path.is_file())
    for value in ("Auth-Pass-1", "Header-Token-2", "Passwd-Value-3", "List-Token-4"):
        assert value not in written + result.stdout + result.stderr
    recorded = ChunkedFileSystemRunLogStore(log_folder=folder).get_run_config("masked")["run_log_store"]
    assert recorded["storage_options"] == {
        "auth": ["***", "***"],
        "headers": {"Authorization": "***"},
        "passwd": "***",
        "token": ["***"],
        "profile": "dev",
    }

"""chunked-fs against the magnus.testing contracts, with real concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from conftest import SpoilsParts

from magnus.datastore.models import StepLog
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError, RunLogError, StepLogNotFoundError, UserInputError
from magnus.testing import ExecutorContract, RunLogStoreContract
from magnus.testing.pipelines import dag, map_of, task, write_pipeline
from magnus.testing.run_log_store import StoreFactory
from magnus_runlog_chunked import store as chunked_store
from magnus_runlog_chunked.layout import BRANCHES_SUFFIX, file_name
from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore, _UnchangedFiles


class TestChunkedStore(SpoilsParts, RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "logs"))


class TestLocalExecutorWithChunkedStore(ExecutorContract):
    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return {"run_log_store": {"type": "chunked-fs", "config": {"log_folder": str(tmp_path / "logs")}}}


def test_the_location_a_person_is_shown_is_the_runs_folder() -> None:
    assert ChunkedFileSystemRunLogStore(log_folder="logs/").location("r1") == "logs/r1"
    assert ChunkedFileSystemRunLogStore(log_folder="s3://bucket/runs").location("r1") == "s3://bucket/runs/r1"


def test_folder_names_are_safe() -> None:
    assert file_name("a step/with slash") == "a%20step%2Fwith%20slash"
    assert file_name(".hidden") == "%2Ehidden"
    assert len(file_name("x" * 1000)) < 200


def test_only_run_folders_inside_log_folder_are_listed(tmp_path: Path) -> None:
    outside = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "elsewhere"))
    outside.create_run_log("stranger")
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "logs"))
    store.create_run_log("mine")
    (tmp_path / "logs" / "linked").symlink_to(tmp_path / "elsewhere" / "stranger")  # leads outside
    (tmp_path / "logs" / "empty").mkdir()  # no run's own file
    (tmp_path / "logs" / "notes.txt").write_text("not a run")
    assert store.run_ids() == ["mine"]


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


def test_separate_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """Independent interpreters (as pods would be), started together, each writing its own branch."""
    from magnus.datastore.models import StepLog

    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run", status="PROCESSING")
    store.add_step_log("run", StepLog(name="map", internal_name="map", status="PROCESSING", step_type="map"))
    (tmp_path / "writer.py").write_text(WRITER)
    writers, steps = 8, 40
    processes = [
        subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(tmp_path), str(number), str(steps)])
        for number in range(writers)
    ]
    assert [process.wait(120) for process in processes] == [0] * writers

    run_log = store.get_run_log_by_id("run")
    branches = run_log.steps["map"].branches
    assert len(branches) == writers
    assert all(branch.status == "SUCCESS" and len(branch.steps) == steps for branch in branches.values())
    assert len(run_log.parameters) == writers * steps


def test_cost_of_a_step_does_not_grow_with_the_run(tmp_path: Path) -> None:
    """Adding a step writes one file, whatever is already there (counted, not timed)."""
    from magnus.datastore.models import StepLog

    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    for number in range(300):
        store.add_step_log("run", StepLog(name=f"s{number}", internal_name=f"s{number}", status="SUCCESS"))
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.json")}
    time.sleep(0.01)
    store.add_step_log("run", StepLog(name="new", internal_name="new", status="SUCCESS"))
    after = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.json")}
    assert not list(tmp_path.rglob("*.tmp")), "no temp file is left behind"
    changed = [path for path in after if before.get(path) != after[path]]
    assert [path.relative_to(tmp_path).as_posix() for path in changed] == ["run/new.step.json"]


STEPS = """
def prepare() -> dict:
    return {"items": [0, 0.5, 2], "rate": 0.5}  # branches "0" and "0.5": names that share a prefix

def work(item: float, rate: float) -> dict:
    return {f"done_{item}": item * rate}
"""


def normalise(run_log: Dict[str, Any]) -> Dict[str, Any]:
    """A run log without what differs between any two runs (ids, times, the store's own config)."""
    text = json.dumps(run_log)
    data = json.loads(text.replace(run_log["run_id"], "RUN"))
    for differing in ("run_log_store", "configuration_file"):
        data["run_config"].pop(differing)

    def scrub(steps: Dict[str, Any]) -> None:
        for step in steps.values():
            for attempt in step["attempts"]:
                attempt.update(start_time="", end_time="", duration="")
            for branch in step["branches"].values():
                scrub(branch["steps"])

    scrub(data["steps"])
    return data


def write_chunk_pipeline(folder: Path) -> None:
    """A map (over values sharing a prefix) then a parallel step, each branch one task."""
    (folder / "chunk_steps.py").write_text(textwrap.dedent(STEPS))
    branch = dag("work", {"work": task("chunk_steps.work")})
    steps = {
        "prepare": task("chunk_steps.prepare", "each"),
        "each": map_of("chunk_steps.work", "par"),
        "par": {"type": "parallel", "branches": {"x": branch, "y": branch}, "next": "success"},
    }
    write_pipeline(folder, steps, "prepare")
    (folder / "params.yaml").write_text("item: 0\n")


def test_reassembles_the_same_json_as_the_file_system_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_chunk_pipeline(tmp_path)
    for store in ("file-system", "chunked-fs"):
        config = {"run_log_store": {"type": store, "config": {"log_folder": store}}}
        (tmp_path / f"{store}.yaml").write_text(yaml.safe_dump(config))
        execute("pipeline.yaml", f"{store}.yaml", "params.yaml", run_id=f"run-{store}")
    chunked = ChunkedFileSystemRunLogStore(log_folder="chunked-fs").get_run_log_by_id("run-chunked-fs")
    flat = json.loads((tmp_path / "file-system" / "run-file-system.json").read_text())
    assert normalise(chunked.model_dump(mode="json")) == normalise(flat)
    assert os.path.isfile(tmp_path / "chunked-fs" / "run-chunked-fs" / "each.branches" / "2+work.step.json")


def test_workers_leave_the_same_run_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_chunk_pipeline(tmp_path)
    logs = []
    for workers in (1, 2):
        config = {
            "executor": {"type": "local", "config": {"max_workers": workers}},
            "run_log_store": {"type": "chunked-fs", "config": {"log_folder": "logs"}},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        run_log = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id=f"run-{workers}", full=True)
        assert run_log is not None and run_log.status == "SUCCESS"
        logs.append(normalise(run_log.model_dump(mode="json")))
    sequential, parallel = logs
    for log in logs:
        log["run_config"].pop("executor")
    assert sequential == parallel


class TestLocalExecutorWithWorkersAndChunkedStore(ExecutorContract):
    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return {
            "executor": {"type": "local", "config": {"max_workers": 2}},
            "run_log_store": {"type": "chunked-fs", "config": {"log_folder": str(tmp_path / "logs")}},
        }


def test_a_part_left_empty_by_a_power_loss_reads_as_not_recorded(tmp_path: Path) -> None:
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    for name in ("done", "cut"):
        store.add_step_log("run", StepLog(name=name, internal_name=name, status="SUCCESS"))
    (tmp_path / "run" / "cut.step.json").write_bytes(b"")  # renamed into place, data never flushed

    reader = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    assert list(reader.get_run_log_by_id("run").steps) == ["done"]
    with pytest.raises(StepLogNotFoundError):
        reader.get_step_log("run", "cut")


def test_parameters_written_by_another_process_are_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_UnchangedFiles, "_SETTLE_NS", 0)  # keep every read, however recent
    reader = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    writer = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    reader.create_run_log("run")
    writer.set_parameters("run", {"items": [1, 2], "other": "a"})
    assert reader.get_parameters("run") == {"items": [1, 2], "other": "a"}
    writer.set_parameters("run", {"items": [3, 4]})  # same size, replaced
    writer.set_parameters("run", {"new": True})
    assert reader.get_parameters("run") == {"items": [3, 4], "other": "a", "new": True}


def test_an_unchanged_parameter_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task reads the parameters; a map's long list must not be parsed again for each item."""
    monkeypatch.setattr(_UnchangedFiles, "_SETTLE_NS", 0)
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    store.set_parameters("run", {"items": list(range(1000))})
    parsed = []
    read_json = chunked_store._read_json
    monkeypatch.setattr(
        chunked_store, "_read_json", lambda storage, path: parsed.append(path) or read_json(storage, path)
    )
    for _ in range(5):
        assert len(store.get_parameters("run")["items"]) == 1000
    assert len(parsed) == 1


@pytest.mark.parametrize("durable_steps, flushes", [(False, 0), (True, 1)])
def test_finished_steps_are_flushed_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable_steps: bool, flushes: int
) -> None:
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path), durable_steps=durable_steps)
    store.create_run_log("run")
    flushed = []
    monkeypatch.setattr(os, "fsync", flushed.append)
    store.add_step_log("run", StepLog(name="a", internal_name="a", status="PROCESSING", step_type="task"))
    store.add_step_log("run", StepLog(name="a", internal_name="a", status="SUCCESS", step_type="task"))
    assert len(flushed) == flushes
    store.update_run_log_status("run", "SUCCESS")
    assert len(flushed) == flushes + 1, "the run's final status is always flushed"


def test_a_failed_run_names_its_step_though_only_the_header_is_read_back(tmp_path: Path) -> None:
    """`magnus execute` reads back the run's header alone; a failure reads the steps to name one."""
    (tmp_path / "failing.py").write_text("def boom():\n    raise KeyError('boom')\n")
    steps = {
        "bad": {"type": "task", "command": "failing.boom", "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "bad", "steps": steps}}))
    (tmp_path / "c.yaml").write_text("run_log_store:\n  type: chunked-fs\n")
    command = [sys.executable, "-m", "magnus", "execute", "-f", "p.yaml", "-c", "c.yaml", "--run-id", "r1"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "Error: run 'r1' ended FAIL at step 'bad': KeyError: 'boom'" in result.stderr.splitlines()


def test_a_step_of_any_type_keeps_its_branches(tmp_path: Path) -> None:
    """The store knows no node types: a step holds branches when branches were recorded in it."""
    from magnus.datastore.models import BranchLog

    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    loop = StepLog(name="loop", internal_name="loop", status="SUCCESS", step_type="third-party-loop")
    store.add_step_log("run", loop)
    store.add_branch_log("run", BranchLog(internal_name="loop.1", status="SUCCESS"))
    store.add_step_log("run", StepLog(name="body", internal_name="loop.1.body", status="SUCCESS"))
    store.update_step_log_status("run", "loop", "SUCCESS", "settled")
    read = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path)).get_run_log_by_id("run").steps["loop"]
    assert list(read.branches) == ["loop.1"] and list(read.branches["loop.1"].steps) == ["loop.1.body"]


def test_only_steps_holding_branches_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a run lists the branches folder of the steps that recorded branches, and no other."""
    from magnus.datastore.models import BranchLog

    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    fanned = StepLog(name="loop", internal_name="loop", status="SUCCESS", step_type="loop")
    fanned.branches = {"loop.a": BranchLog(internal_name="loop.a", status="SUCCESS")}
    store.add_step_log("run", fanned)
    store.add_step_log("run", StepLog(name="t", internal_name="loop.a.t", status="SUCCESS", step_type="custom-leaf"))
    store.add_step_log("run", StepLog(name="after", internal_name="after", status="SUCCESS"))
    scanned: list = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scanned.append(str(path)) or scandir(path))
    steps = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path)).get_run_log_by_id("run").steps
    assert list(steps["loop"].branches["loop.a"].steps) == ["loop.a.t"]
    listed = [path for path in scanned if path.endswith(BRANCHES_SUFFIX)]
    assert listed == [str(tmp_path / "run" / "loop.branches")], "only the composite's branches are listed"


def test_parts_written_before_the_branch_flag_are_read_whole(tmp_path: Path) -> None:
    """A step file without the flag (an earlier version wrote it) is searched for branches."""
    from magnus.datastore.models import BranchLog

    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    store.add_step_log("run", StepLog(name="m", internal_name="m", status="SUCCESS", step_type="map"))
    store.add_branch_log("run", BranchLog(internal_name="m.0", status="SUCCESS"))
    step_file = tmp_path / "run" / "m.step.json"
    old = json.loads(step_file.read_text())
    del old["_branched"]
    step_file.write_text(json.dumps(old))
    assert list(ChunkedFileSystemRunLogStore(log_folder=str(tmp_path)).get_step_log("run", "m").branches) == ["m.0"]


def test_durable_steps_flush_every_ended_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path), durable_steps=True)
    store.create_run_log("run")
    flushed = []
    monkeypatch.setattr(os, "fsync", flushed.append)
    store.add_step_log("run", StepLog(name="x", internal_name="x", status="PROCESSING", step_type="task"))
    assert flushed == []
    store.add_step_log("run", StepLog(name="x", internal_name="x", status="SUCCESS", step_type="any-type"))
    assert len(flushed) == 1, "an ended step is flushed whatever its type"


@pytest.mark.parametrize("run_id", ["../x", "..", ".", "/abs", "a/b"])
def test_a_run_id_that_is_a_path_is_refused(tmp_path: Path, run_id: str) -> None:
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "logs"))
    with pytest.raises(UserInputError):
        store.create_run_log(run_id)
    with pytest.raises(UserInputError):
        store.get_run_log_by_id(run_id)
    assert [path.name for path in tmp_path.rglob("*")] in ([], ["logs"])


def test_a_symlinked_run_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "logs" / "run").symlink_to(tmp_path / "outside", target_is_directory=True)
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "logs"))
    with pytest.raises(RunLogError, match="leads outside"):
        store.create_run_log("run")
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_log_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "afile"))
    with pytest.raises(
        ConfigurationError, match=r"^run_log_store.config.log_folder: '.*afile' is a file, not a folder$"
    ):
        store.create_run_log("run")
    assert not store.run_log_exists("run")


def test_a_folder_left_without_its_run_file_does_not_block_the_run_id(tmp_path: Path) -> None:
    """The claim is the run's own file, not its folder: a folder left half-made is reused."""
    (tmp_path / "logs" / "run" / "parameters").mkdir(parents=True)
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path / "logs"))
    store.create_run_log("run", status="PROCESSING")
    assert store.get_run_log_by_id("run").status == "PROCESSING"

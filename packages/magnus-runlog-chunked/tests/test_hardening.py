"""Runs whose parts do not read back, parts that are planted links, and listing without reading
every part (issue 31, classes 8, 9 and 19), through ``python -m magnus`` as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, List

import pytest
import yaml

from magnus.datastore.listing import summarize
from magnus.datastore.models import BranchLog, StepLog
from magnus.errors import RunLogError
from magnus.testing.pipelines import map_of, run_magnus, task, write_pipeline
from magnus_runlog_chunked import layout
from magnus_runlog_chunked.storage import LocalFiles
from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore

# What a damaged or planted file holds: never to be shown in a message.
PRIVATE = "s3cr3t-payload"
LOCATION = "chunks/damaged"


def magnus(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_magnus(*args, cwd=project, isolated=True)


def refused(result: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 2 and one ``Error:`` line holding ``expected``, nothing private shown."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert expected in line, line
    assert PRIVATE not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose store holds two finished runs, ``fine`` and ``damaged``: a task, then a map of two items."""
    project = tmp_path_factory.mktemp("chunked")
    config = {
        "run_log_store": {"type": "chunked-fs", "config": {"log_folder": "chunks"}},
        "catalog": {"type": "do-nothing"},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    (project / "items.yaml").write_text(yaml.safe_dump({"items": [1, 2]}))
    steps = {"first": task("true", "fan", command_type="shell"), "fan": map_of("true", command_type="shell")}
    write_pipeline(project, steps, "first")
    for run_id in ("fine", "damaged"):
        result = magnus(
            project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "items.yaml", "--run-id", run_id
        )
        assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def project(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished project, to damage."""
    copy = tmp_path / "project"
    subprocess.run(["cp", "-a", str(finished), str(copy)], check=True)
    return copy


def cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def run_file_cut(run: Path) -> str:
    cut_in_half(run / layout.RUN_FILE)
    return "RunLog.json: not JSON"


def step_file_cut(run: Path) -> str:
    cut_in_half(run / "first.step.json")
    return "first.step.json: not JSON"


def step_of_another_shape(run: Path) -> str:
    (run / "first.step.json").write_text(json.dumps({"name": PRIVATE, "status": [PRIVATE]}))
    return "first.step.json: internal_name: Field required (and 1 more)"


def branch_of_another_kind(run: Path) -> str:
    (run / "fan.branches" / "1.branch.json").write_text(json.dumps([PRIVATE]))
    return "1.branch.json: a JSON list, not an object"


def parameter_garbled(run: Path) -> str:
    (run / "parameters" / "items.json").write_text(f'{{"name": "items", "value": [{PRIVATE}')
    return "items.json: not JSON"


DAMAGES = [run_file_cut, step_file_cut, step_of_another_shape, branch_of_another_kind, parameter_garbled]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_part_refuses_its_run_in_one_line(project: Path, damage: Callable[[Path], str]) -> None:
    reason = damage(project / LOCATION)
    expected = f"run 'damaged': its run log in {LOCATION} is not readable: {reason}"
    commands: List[List[str]] = [
        ["runs", "show", "damaged", "-c", "config.yaml"],
        ["runs", "diff", "fine", "damaged", "-c", "config.yaml"],
        ["runs", "report", "damaged", "-o", "r.html", "-c", "config.yaml"],
        ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "again", "--use-cached", "damaged"],
    ]
    for command in commands:
        refused(magnus(project, *command), expected)
    assert not (project / "chunks" / "again").exists()

    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    rows = [row.split()[0] for row in listed.stdout.splitlines()[1:]]
    if damage is run_file_cut:  # what listing reads of a finished run: its own file
        assert rows == ["fine"]
        (skipped,) = listed.stderr.splitlines()
        assert skipped.startswith(f"skipped {expected}"), skipped
    else:
        assert sorted(rows) == ["damaged", "fine"] and listed.stderr == ""


@pytest.mark.parametrize("damage", [step_file_cut, branch_of_another_kind])
def test_listing_a_run_without_a_summary_names_it_when_a_step_is_damaged(
    project: Path, damage: Callable[[Path], str]
) -> None:
    """A run still running (or written by an older version) is listed from its steps: a damaged one is named."""
    header = json.loads((project / LOCATION / layout.RUN_FILE).read_text())
    header.pop(layout.SUMMARY, None)
    (project / LOCATION / layout.RUN_FILE).write_text(json.dumps(header))
    reason = damage(project / LOCATION)
    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == ["fine"]
    (skipped,) = listed.stderr.splitlines()
    assert skipped.startswith(f"skipped run 'damaged': its run log in {LOCATION} is not readable: {reason}"), skipped
    assert PRIVATE not in listed.stderr


@pytest.mark.parametrize("left", [b"", b"\x00" * 512], ids=["empty", "zeros"])
def test_an_empty_step_part_still_reads_as_not_recorded(project: Path, left: bytes) -> None:
    """What a power loss leaves of a step written without durable_steps (no bytes, or zeros) is no damage."""
    (project / LOCATION / "first.step.json").write_bytes(left)
    shown = magnus(project, "runs", "show", "damaged", "-c", "config.yaml")
    assert shown.returncode == 0, shown.stderr
    assert "first" not in shown.stdout.split("\n", 3)[3]


# ---- class 9: planted links ---------------------------------------------------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the store that reads as a step log, holding PRIVATE text."""
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps({"name": "first", "internal_name": "first", "message": PRIVATE, "status": 5}))
    return path


@pytest.mark.parametrize("part", ["first.step.json", "RunLog.json", "fan.branches/1+work.step.json"])
def test_a_part_that_is_a_symlink_is_refused_without_showing_what_it_leads_to(
    project: Path, outside: Path, part: str
) -> None:
    planted = project / LOCATION / part
    planted.unlink()
    planted.symlink_to(outside)
    expected = f"run 'damaged': its run log in {LOCATION} is not readable: {planted.name} is a symlink: refused"
    refused(magnus(project, "runs", "show", "damaged", "-c", "config.yaml"), expected)
    refused(magnus(project, "runs", "show", "damaged", "-c", "config.yaml", "--json"), expected)
    resumed = magnus(
        project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "x", "--use-cached", "damaged"
    )
    refused(resumed, expected)
    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0 and PRIVATE not in listed.stdout + listed.stderr


def test_a_symlinked_branches_folder_is_refused_for_reading_and_writing(tmp_path: Path, outside: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "1.branch.json").write_text(json.dumps({"internal_name": "fan.1", "status": PRIVATE}))
    logs = tmp_path / "logs"
    store = ChunkedFileSystemRunLogStore(log_folder=str(logs))
    store.create_run_log("run")
    store.add_step_log("run", StepLog(name="fan", internal_name="fan", step_type="map", status="PROCESSING"))
    (logs / "run" / "fan.branches").symlink_to(elsewhere, target_is_directory=True)
    step_file = logs / "run" / "fan.step.json"  # says it holds branches, as after a fan-out
    step_file.write_text(json.dumps({**json.loads(step_file.read_text()), layout.BRANCHED: True}))

    reader = ChunkedFileSystemRunLogStore(log_folder=str(logs))
    with pytest.raises(RunLogError, match=r"leads outside .* \(a symlink\): refused") as raised:
        reader.get_run_log_by_id("run")
    assert PRIVATE not in str(raised.value)
    with pytest.raises(RunLogError, match="leads outside"):
        reader.get_branch_statuses("run", "fan")
    writer = ChunkedFileSystemRunLogStore(log_folder=str(logs))
    with pytest.raises(RunLogError, match="leads outside"):
        writer.add_branch_log("run", BranchLog(internal_name="fan.2", status="PROCESSING"))
    assert sorted(path.name for path in elsewhere.iterdir()) == ["1.branch.json"]


def test_reading_a_part_checks_each_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Confinement costs nothing per read: a folder is resolved once per process, a file opened without following."""
    store = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run")
    store.add_step_log("run", StepLog(name="m", internal_name="m", step_type="map", status="SUCCESS"))
    for item in range(20):
        store.add_branch_log("run", BranchLog(internal_name=f"m.{item}", status="SUCCESS"))
        store.add_step_log("run", StepLog(name="w", internal_name=f"m.{item}.w", status="SUCCESS"))
    resolved: List[Any] = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: resolved.append(path) or real(path, **kw))
    reader = ChunkedFileSystemRunLogStore(log_folder=str(tmp_path))
    assert len(reader.get_run_log_by_id("run").steps["m"].branches) == 20
    assert isinstance(reader._storage, LocalFiles) and len(resolved) <= 8, resolved


# ---- class 19: listing from the run's own file ------------------------------------------------------------
def test_listing_finished_runs_reads_their_own_files_only(finished: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ChunkedFileSystemRunLogStore(log_folder=str(finished / "chunks"))
    expected = sorted((summarize(store.get_run_log_by_id(run_id)) for run_id in ("damaged", "fine")), key=str)
    read: List[str] = []
    real = LocalFiles.read
    monkeypatch.setattr(LocalFiles, "read", lambda self, path: read.append(path) or real(self, path))
    listing = ChunkedFileSystemRunLogStore(log_folder=str(finished / "chunks")).list_runs()
    assert sorted(listing.runs, key=str) == expected and listing.unreadable == []
    assert sorted(os.path.relpath(path, finished / "chunks") for path in read) == [
        "damaged/RunLog.json",
        "fine/RunLog.json",
    ]


def test_a_summary_kept_for_another_status_is_not_used(project: Path) -> None:
    """A run ended, then set running again by an older version (which keeps unknown keys): read from its steps."""
    header = json.loads((project / LOCATION / layout.RUN_FILE).read_text())
    header["status"] = "PROCESSING"
    (project / LOCATION / layout.RUN_FILE).write_text(json.dumps(header))
    store = ChunkedFileSystemRunLogStore(log_folder=str(project / "chunks"))
    (summary,) = [summary for summary in store.list_runs().runs if summary.run_id == "damaged"]
    assert summary == summarize(store.get_run_log_by_id("damaged")) and summary.end is None

"""Names a user controls never become paths outside their folders (issue 18, classes 1, 3 and 4).

Run ids (``--run-id``, ``MAGNUS_RUN_ID``, ``--use-cached``, the SDK's ``run_id``), step and branch
names, map values in file names and ``compute_data_folder`` are checked or encoded; a run id is
claimed atomically, so two processes started with the same one never both run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List

import pytest
import yaml

from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.errors import ConfigurationError, PipelineDefinitionError, UserInputError
from magnus.names import check_path_name, encode_file_name, working_folder_problem
from magnus.testing.pipelines import TERMINALS, write_pipeline
from magnus.testing.pipelines import run_magnus as magnus


def everything_under(folder: Path) -> List[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder inside ``tmp_path``: whatever lands beside it was written outside."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "steps.py").write_text(
        textwrap.dedent(
            """
            import time

            def hello() -> None:
                print("hello")

            def slow() -> None:
                time.sleep(1.5)

            def each(item: str) -> None:
                print("item", item)
            """
        )
    )
    (folder / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    write_pipeline(folder, {"hello": {"type": "task", "command": "steps.hello", "next": "success"}}, "hello")
    return folder


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2 and one ``Error:`` line naming ``words``; no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


# ---- class 1: run ids are names, not paths ----------------------------------------------------------
BAD_RUN_IDS = ["../../x", "..", ".", "a/b", "-x", "a\\b"]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_a_run_id_that_is_a_path_is_refused(project: Path, run_id: str) -> None:
    before = everything_under(project.parent)
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", run_id, cwd=project)
    assert_refused(result, "--run-id", repr(run_id))
    assert everything_under(project.parent) == before  # no run log, no catalog, nothing elsewhere


def test_an_absolute_run_id_is_refused(project: Path) -> None:
    target = project.parent / "elsewhere"
    result = magnus("execute", "-c", "config.yaml", "--run-id", str(target), cwd=project)
    assert_refused(result, "--run-id")
    assert not list(project.parent.glob("elsewhere*"))
    assert not (project / ".run_log_store").exists()


@pytest.mark.parametrize("run_id", ["../../x", "..", ".", "/tmp/x"])
def test_the_run_id_of_the_environment_is_checked_alike(project: Path, run_id: str) -> None:
    before = everything_under(project.parent)
    result = magnus("execute", "-c", "config.yaml", cwd=project, env={"MAGNUS_RUN_ID": run_id})
    assert_refused(result, "MAGNUS_RUN_ID", repr(run_id))
    assert everything_under(project.parent) == before


@pytest.mark.parametrize("run_id", ["../../x", "..", ".", "/tmp/x"])
def test_use_cached_is_checked_alike(project: Path, run_id: str) -> None:
    before = everything_under(project.parent)
    result = magnus("execute", "-c", "config.yaml", "--run-id", "fresh", "--use-cached", run_id, cwd=project)
    assert_refused(result, "--use-cached", repr(run_id))
    assert everything_under(project.parent) == before


def test_the_sdk_run_id_is_checked(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from magnus import Pipeline, Task

    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    hello = Task(name="hello", command="steps.hello", terminate_with_success=True)
    for run_id in ("../x", "nul\x00byte", "x" * 300):
        with pytest.raises(UserInputError, match="--run-id"):
            Pipeline(start_at=hello, steps=[hello], add_terminal_nodes=True).execute("config.yaml", run_id=run_id)
    assert not (project / ".run_log_store").exists()


def test_the_store_itself_refuses_a_path_as_run_id(tmp_path: Path) -> None:
    """Defence in depth: a store reached without compose (a plugin, a test) checks too."""
    store = FileSystemRunLogStore(log_folder=str(tmp_path / "logs"))
    with pytest.raises(UserInputError):
        store.create_run_log("../escaped")
    assert not (tmp_path / "escaped.json").exists()


def test_a_symlink_out_of_the_log_folder_is_refused(tmp_path: Path) -> None:
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    logs.mkdir()
    outside.mkdir()
    (logs / "run.journal").symlink_to(outside / "stolen.journal")
    store = FileSystemRunLogStore(log_folder=str(logs))
    with pytest.raises(Exception, match="leads outside"):
        store.create_run_log("run")
    assert list(outside.iterdir()) == []


def test_an_index_folder_linked_out_of_the_log_folder_is_never_written_or_read(tmp_path: Path) -> None:
    """The store's index of executed steps (``.index``) stays inside ``log_folder``: a link planted
    there makes indexing a step fail (said in a warning by the step runner), writes nothing outside
    and finds nothing there."""
    from magnus.datastore.models import CacheRecord, DataCatalog, StepAttempt, StepLog

    logs, outside = tmp_path / "logs", tmp_path / "outside"
    logs.mkdir()
    (outside / "key").mkdir(parents=True)
    (outside / "key" / ("a" * 64 + ".json")).write_text('{"run_id": "planted", "step": "x"}')
    (logs / ".index").symlink_to(outside)
    store = FileSystemRunLogStore(log_folder=str(logs))
    # a step that put a file: its index folder (.index/put/<hash>) is still to be made
    step = StepLog(name="s", internal_name="s", status="SUCCESS", cache=CacheRecord(key="not a digest"))
    step.attempts = [StepAttempt(status="SUCCESS", end_time="2026-12-06 10:00:00")]
    step.data_catalog = [DataCatalog(name="out.csv", data_hash="1" * 64, stage="put")]
    with pytest.raises(Exception, match="leads outside"):
        store.index_step("run", step)
    with pytest.raises(Exception, match="leads outside"):
        store.cached_execution("a" * 64)
    assert everything_under(outside) == ["key", "key/" + "a" * 64 + ".json"]


# ---- the one validator and the one encoding -----------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["", ".", "..", "a/b", "/abs", "a\\b", "nul\x00", "tab\there", "bell\x07", "-opt", "é" * 200]
)
def test_check_path_name_refuses(value: str) -> None:
    with pytest.raises(UserInputError) as raised:
        check_path_name(value, "--run-id")
    assert str(raised.value).startswith(f"--run-id {value!r}: ")


@pytest.mark.parametrize("value", ["run-1", "agile-babbage-1200", "with space", "a.b", "..x", "ünï-cødé", "x" * 255])
def test_check_path_name_accepts(value: str) -> None:
    assert check_path_name(value, "--run-id") == value


@pytest.mark.parametrize("value", ["../x", "/etc/passwd", "..", ".", "a\x00b", "\\\\server\\x", "x" * 1000, "-"])
def test_encoded_names_stay_one_visible_file(value: str) -> None:
    name = encode_file_name(value)
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name not in ("", ".", "..")
    assert len(name.encode()) <= 160
    assert encode_file_name(value + "y") != name


def test_encoding_keeps_ordinary_names() -> None:
    assert encode_file_name("train.execution.log_0") == "train.execution.log_0"


@pytest.mark.parametrize("folder", ["/etc", "../x", "data/../../x", "/"])
def test_a_folder_outside_the_working_folder_is_named(folder: str, tmp_path: Path) -> None:
    assert "inside the working folder" in working_folder_problem(folder, tmp_path)


@pytest.mark.parametrize("folder", [".", "data", "data/../other", "./a/b"])
def test_folders_inside_the_working_folder_pass(folder: str, tmp_path: Path) -> None:
    assert working_folder_problem(folder, tmp_path) == ""
    assert working_folder_problem(str(tmp_path / folder), tmp_path) == ""


# ---- class 3: one run id, one run ----------------------------------------------------------------------
def test_two_processes_with_one_run_id_never_both_run(project: Path) -> None:
    write_pipeline(project, {"slow": {"type": "task", "command": "steps.slow", "next": "success"}}, "slow", "slow.yaml")
    argv = [sys.executable, "-m", "magnus", "execute", "-f", "slow.yaml", "-c", "config.yaml", "--run-id", "shared"]
    processes = [
        subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outcomes = sorted((process.wait(60), process.communicate()[1]) for process in processes)
    (won, _), (lost, message) = outcomes
    assert (won, lost) == (0, 2), outcomes
    assert message.strip() == "Error: a run log for run 'shared' already exists: choose another --run-id"
    log = json.loads((project / ".run_log_store" / "shared.json").read_text())
    assert log["status"] == "SUCCESS"
    assert len(log["steps"]["slow"]["attempts"]) == 1


def test_a_run_id_taken_earlier_is_refused(project: Path) -> None:
    assert magnus("execute", "-c", "config.yaml", "--run-id", "taken", cwd=project).returncode == 0
    started = time.monotonic()
    assert_refused(magnus("execute", "-c", "config.yaml", "--run-id", "taken", cwd=project), "'taken'", "exists")
    assert time.monotonic() - started < 30


# ---- class 4: step names, map values, folders -------------------------------------------------------
@pytest.mark.parametrize("name", ["/etc", "a/b", "-x", "back\\slash", "tab\there"])
def test_a_step_name_that_is_a_path_is_a_pipeline_problem(project: Path, name: str) -> None:
    write_pipeline(project, {name: {"type": "task", "command": "steps.hello", "next": "success"}}, name, "bad.yaml")
    result = magnus("execute", "-f", "bad.yaml", "-c", "config.yaml", cwd=project)
    assert_refused(result, "bad.yaml", "step name", repr(name))
    assert not (project / ".run_log_store").exists()


def test_a_nul_in_a_step_name_is_a_pipeline_problem(tmp_path: Path) -> None:
    from magnus.entrypoints import load_dag

    steps = {"a\x00b": {"type": "stub", "next": "success"}, **TERMINALS}
    with pytest.raises(PipelineDefinitionError, match=r"steps\.a\\x00b.*control characters"):
        load_dag({"start_at": "a\x00b", "steps": steps}, source="inline.yaml")


def test_a_branch_name_that_is_a_path_is_a_pipeline_problem(project: Path) -> None:
    branch = {"start_at": "s", "steps": {"s": {"type": "stub", "next": "success"}, **TERMINALS}}
    steps = {"par": {"type": "parallel", "branches": {"/etc": branch, "ok": branch}, "next": "success"}}
    write_pipeline(project, steps, "par", "bad.yaml")
    result = magnus("execute", "-f", "bad.yaml", "-c", "config.yaml", cwd=project)
    assert_refused(result, "bad.yaml: dag.steps.par.branches./etc", "branch name '/etc'")


def test_map_values_that_look_like_paths_run(project: Path) -> None:
    (project / "parameters.yaml").write_text(yaml.safe_dump({"items": ["../x", "/abs", "..", "ok"]}))
    each = {"start_at": "each", "steps": {"each": {"type": "task", "command": "steps.each", "next": "success"}}}
    each["steps"].update(TERMINALS)
    steps = {"over": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": each, "next": "success"}}
    write_pipeline(project, steps, "over", "map.yaml")
    before = everything_under(project.parent)
    result = magnus(
        "execute", "-f", "map.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "m", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((project / ".run_log_store" / "m.json").read_text())["status"] == "SUCCESS"
    new = set(everything_under(project.parent)) - set(before)
    assert all(path.startswith("project/") for path in new), new


@pytest.mark.parametrize("folder", ["/etc", "../../x"])
def test_a_compute_folder_outside_the_working_folder_is_refused_in_the_config(project: Path, folder: str) -> None:
    (project / "bad-config.yaml").write_text(
        yaml.safe_dump({"catalog": {"type": "do-nothing", "config": {"compute_data_folder": folder}}})
    )
    result = magnus("execute", "-c", "bad-config.yaml", cwd=project)
    assert_refused(result, "bad-config.yaml: catalog.config.compute_data_folder", repr(folder))


def test_a_compute_folder_outside_the_working_folder_is_refused_in_a_step(project: Path) -> None:
    task = {"type": "task", "command": "steps.hello", "next": "success", "catalog": {"compute_data_folder": "/etc"}}
    write_pipeline(project, {"hello": task}, "hello", "bad.yaml")
    result = magnus("execute", "-f", "bad.yaml", "-c", "config.yaml", cwd=project)
    assert_refused(result, "bad.yaml: dag.steps.hello.catalog.compute_data_folder", "'/etc'")


# ---- class 7 (the stores' part): a log_folder that cannot hold run logs ---------------------------------
def test_a_log_folder_that_is_a_file_is_named(project: Path) -> None:
    (project / "afile").write_text("not a folder")
    (project / "file-config.yaml").write_text(
        yaml.safe_dump({"run_log_store": {"type": "file-system", "config": {"log_folder": "afile"}}})
    )
    result = magnus("execute", "-c", "file-config.yaml", cwd=project)
    assert_refused(result, "run_log_store.config.log_folder: 'afile' is a file, not a folder")
    assert (project / "afile").read_text() == "not a folder"


def test_a_log_folder_below_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    store = FileSystemRunLogStore(log_folder=str(tmp_path / "afile" / "logs"))
    with pytest.raises(ConfigurationError, match=r"run_log_store\.config\.log_folder: .* cannot be made a folder"):
        store.create_run_log("run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_an_unwritable_log_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o500)
    store = FileSystemRunLogStore(log_folder=str(folder))
    with pytest.raises(ConfigurationError, match="is not writable"):
        store.create_run_log("run")


def test_generated_run_ids_do_not_collide_within_a_minute() -> None:
    """magnus 0.5.1's ``adjective-name-HHMM`` had 3,240 ids a minute; 24 random bits follow now."""
    from magnus.names import generate_run_id, path_name_problem

    ids = [generate_run_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-[0-9]{4}-[0-9a-f]{6}", run_id) for run_id in ids)
    assert not [run_id for run_id in ids if path_name_problem(run_id)]


def test_a_path_relative_inside_a_folder_or_none_when_it_leads_out(tmp_path: Path) -> None:
    from magnus.names import relative_inside

    assert relative_inside(str(tmp_path / "a" / "b.yaml"), str(tmp_path)) == "a/b.yaml"
    assert relative_inside(str(tmp_path / "a" / ".." / "c.yaml"), str(tmp_path)) == "c.yaml"
    assert relative_inside(str(tmp_path / ".." / "x.yaml"), str(tmp_path)) is None
    assert relative_inside(str(tmp_path), str(tmp_path / "a")) is None
    assert relative_inside(str(tmp_path / "..x"), str(tmp_path)) == "..x"  # a name starting with dots stays in

"""Run logs that nest deep, run logs that do not read back, and listing runs without reading logs
(issue 31, classes 6, 8 and 19), on the file-system store.

The CLI cases run ``python -m magnus`` in a temporary project folder, as a user would.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from magnus.datastore import decoding
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.datastore.listing import summarize
from magnus.parsing import NESTING_LIMIT
from magnus.testing.pipelines import TERMINALS, error_line, run_magnus, write_pipeline

CONFIG = {"run_log_store": {"type": "file-system"}, "catalog": {"type": "do-nothing"}}
# What a damaged run log holds: never to be shown in a message.
PRIVATE = "s3cr3t-payload"


def magnus(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_magnus(*args, cwd=project, isolated=True)


def refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The one ``Error:`` line of a command refused with exit 2, checked to hold each fragment."""
    return error_line(result, 2, *fragments)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path


# ---- class 6: dag_definition chains ------------------------------------------------------------------
def dag_chain(folder: Path, levels: int) -> str:
    """``pipeline.yaml`` holding a ``type: dag`` step whose file holds another, ``levels`` deep, ending in a task.

    The task names the parameter ``deep`` (when there is one): its attempt records it, at the bottom of the log.
    """
    for level in range(levels + 1):
        if level < levels:
            inner: Dict[str, Any] = {"type": "dag", "dag_definition": f"level{level + 1}.yaml", "next": "success"}
        else:
            command = "echo deepest ${#MAGNUS_PRM_deep}"
            inner = {"type": "task", "command_type": "shell", "command": command, "next": "success"}
        name = "pipeline.yaml" if level == 0 else f"level{level}.yaml"
        (folder / name).write_text(
            yaml.safe_dump({"dag": {"start_at": "inner", "steps": {"inner": inner, **TERMINALS}}})
        )
    return "pipeline.yaml"


def deepest_step(levels: int) -> str:
    return ".".join(["inner", "dag"] * levels + ["inner"])


def test_a_dag_definition_chain_deeper_than_the_limit_is_refused_naming_the_file_and_step(project: Path) -> None:
    pipeline = dag_chain(project, NESTING_LIMIT + 1)
    result = magnus(project, "execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "r")
    line = refused(result, f"level{NESTING_LIMIT}.yaml: dag.steps.inner: nested too deep", f"at most {NESTING_LIMIT}")
    assert line.endswith(f"step 'inner' would be level {NESTING_LIMIT + 1}")
    assert not (project / ".run_log_store").exists()


def test_a_chain_far_deeper_than_the_limit_stops_reading_files_at_the_limit(project: Path) -> None:
    """Used to end in an internal error at 200 levels."""
    dag_chain(project, 200)
    (project / f"level{NESTING_LIMIT + 1}.yaml").write_text("not: [valid")  # never read
    refused(magnus(project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml"), "nested too deep")


def test_composite_steps_of_every_kind_count_towards_the_limit(project: Path) -> None:
    """Inline maps and parallels inside included files nest the run log as deep as includes."""
    branch: Dict[str, Any] = {"start_at": "leaf", "steps": {"leaf": {"type": "stub", "next": "success"}, **TERMINALS}}
    for level in range(NESTING_LIMIT):
        kind = ("map", "parallel", "dag")[level % 3]
        if kind == "map":
            step = {
                "type": "map",
                "iterate_on": "items",
                "iterate_as": f"item{level}",
                "branch": branch,
                "next": "success",
            }
        elif kind == "parallel":
            step = {"type": "parallel", "branches": {"only": branch}, "next": "success"}
        else:
            (project / f"inc{level}.yaml").write_text(yaml.safe_dump({"dag": branch}))
            step = {"type": "dag", "dag_definition": f"inc{level}.yaml", "next": "success"}
        branch = {"start_at": f"s{level}", "steps": {f"s{level}": step, **TERMINALS}}
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": branch}))
    (project / "items.yaml").write_text(yaml.safe_dump({"items": [1]}))
    allowed = magnus(project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "items.yaml")
    assert allowed.returncode == 0, allowed.stderr
    (project / "inc_top.yaml").write_text(yaml.safe_dump({"dag": branch}))
    over = {"start_at": "top", "steps": {"top": {"type": "dag", "dag_definition": "inc_top.yaml", "next": "success"}}}
    over["steps"].update(TERMINALS)
    (project / "over.yaml").write_text(yaml.safe_dump({"dag": over}))
    refused(magnus(project, "execute", "-f", "over.yaml", "-c", "config.yaml", "-p", "items.yaml"), "nested too deep")


def test_the_deepest_chain_allowed_runs_shows_and_resumes(project: Path) -> None:
    """At the limit, with a parameter as deep as a YAML file allows, the run log nests deeper than
    pydantic's JSON parser goes (200 levels): it is written, shown, listed and resumed all the same."""
    pipeline = dag_chain(project, NESTING_LIMIT)
    deep: Any = "leaf"
    for _ in range(98):
        deep = {"a": deep}
    (project / "params.yaml").write_text(yaml.safe_dump({"deep": deep}))
    run = magnus(project, "execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml", "--run-id", "deep")
    assert run.returncode == 0, run.stderr
    assert _json_depth(json.loads((project / ".run_log_store" / "deep.json").read_text())) > 200

    shown = magnus(project, "runs", "show", "deep", "-c", "config.yaml")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("inner") == NESTING_LIMIT + 1
    as_json = magnus(project, "runs", "show", "deep", "-c", "config.yaml", "--json")
    step = json.loads(as_json.stdout)["steps"]["inner"]
    for _ in range(NESTING_LIMIT):
        (branch,) = step["branches"].values()
        step = next(inner for inner in branch["steps"].values() if inner["name"] == "inner")
    assert step["internal_name"] == deepest_step(NESTING_LIMIT) and step["status"] == "SUCCESS"
    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0 and "deep" in listed.stdout, listed.stderr

    resumed = magnus(
        project, "execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "again", "--use-cached", "deep"
    )
    assert resumed.returncode == 0, resumed.stderr
    again = FileSystemRunLogStore(log_folder=str(project / ".run_log_store")).get_run_log_by_id("again")
    assert again.steps["inner"].mock and again.parameters["deep"] == deep


def _json_depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return 1 + max((_json_depth(child) for child in children), default=0) if isinstance(value, (dict, list)) else 0


# ---- class 8: run logs that do not read back ----------------------------------------------------------
def two_runs(project: Path) -> None:
    """Runs ``fine`` and ``damaged`` of a two-step shell pipeline, ``damaged`` tagged with PRIVATE text."""
    steps = {
        "one": {"type": "task", "command_type": "shell", "command": "true", "next": "two"},
        "two": {"type": "task", "command_type": "shell", "command": "true", "next": "success"},
    }
    write_pipeline(project, steps, "one")
    for run_id in ("fine", "damaged"):
        result = magnus(
            project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", run_id, "--tag", PRIVATE
        )
        assert result.returncode == 0, result.stderr


def truncate_json(logs: Path) -> str:
    path = logs / "damaged.json"
    path.write_bytes(path.read_bytes()[:300])
    return "not JSON: EOF while parsing"


def garble_journal_line(logs: Path) -> str:
    """A complete line that is no JSON, then a good one: a crash leaves a torn *last* line only."""
    (logs / "damaged.journal").write_text(f'{{"op": "status", "value": "{PRIVATE}"\n{{"op":"status","value":"FAIL"}}\n')
    return "damaged.journal line 1: not JSON"


def wrong_shape(logs: Path) -> str:
    document = json.loads((logs / "damaged.json").read_text())
    document["steps"]["one"]["attempts"] = [{"start_time": {"private": PRIVATE}}]
    (logs / "damaged.json").write_text(json.dumps(document))
    return "steps.*.attempts.0.start_time: Input should be a valid string"


def journal_of_another_kind(logs: Path) -> str:
    (logs / "damaged.journal").write_text(f'["{PRIVATE}"]\n')
    return "damaged.journal line 1: a JSON list, not an object"


@pytest.mark.parametrize("damage", [truncate_json, garble_journal_line, wrong_shape, journal_of_another_kind])
def test_a_damaged_run_log_is_refused_in_one_line_and_left_out_of_the_listing(project: Path, damage: Any) -> None:
    two_runs(project)
    reason = damage(project / ".run_log_store")
    expected = f"run 'damaged': its run log in .run_log_store/damaged.json is not readable: {reason}"

    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == ["fine"]
    (skipped,) = listed.stderr.splitlines()
    assert skipped.startswith(f"skipped {expected}"), skipped

    commands: List[List[str]] = [
        ["runs", "show", "damaged", "-c", "config.yaml"],
        ["runs", "diff", "fine", "damaged", "-c", "config.yaml"],
        ["runs", "report", "damaged", "-o", "r.html", "-c", "config.yaml"],
        ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "resumed", "--use-cached", "damaged"],
    ]
    for command in commands:
        line = refused(magnus(project, *command), expected)
        assert PRIVATE not in line
    assert not (project / ".run_log_store" / "resumed.json").exists()


def test_a_torn_last_journal_line_is_still_ignored(tmp_path: Path) -> None:
    """What a crash mid-append leaves is not damage: the run reads up to its last whole line."""
    store = FileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("run", status="PROCESSING")
    store.set_parameters("run", {"x": 1})
    with open(store.journal_path("run"), "ab") as journal:
        journal.write(b'{"op":"parameters","value":{"x":')
    assert FileSystemRunLogStore(log_folder=str(tmp_path)).get_parameters("run") == {"x": 1}


def test_reasons_never_repeat_the_stored_data() -> None:
    cases = [
        lambda: decoding.load_json(f'{{"a": "{PRIVATE}"'.encode()),
        lambda: decoding.load_run_log(json.dumps({"run_id": PRIVATE, "steps": {PRIVATE: PRIVATE}}).encode()),
        lambda: decoding.load_run_log(b"\xff" + PRIVATE.encode()),
        lambda: decoding.load_mapping(json.dumps(PRIVATE)),
    ]
    for case in cases:
        with pytest.raises(decoding.Unreadable) as raised:
            case()
        assert PRIVATE[:6] not in raised.value.reason and "\n" not in raised.value.reason


# ---- class 9: links planted among a run's files ------------------------------------------------------
@pytest.mark.parametrize("ending", [".journal", ".summary"])
def test_a_planted_link_refuses_its_run_and_the_others_still_list(project: Path, ending: str) -> None:
    """A link out of the store's folder is never followed, nor does it hide the runs beside it."""
    two_runs(project)
    logs = project / ".run_log_store"
    outside = project / "elsewhere"
    outside.write_text('{"op":"status","value":"planted-payload"}\n')
    planted = logs / f"damaged{ending}"
    planted.unlink(missing_ok=True)
    planted.symlink_to(outside)
    expected = (
        "run 'damaged': its run log in .run_log_store/damaged.json is not readable: "
        f"'.run_log_store/damaged{ending}' leads outside .run_log_store (a symlink); refused"
    )

    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == ["fine"]
    assert listed.stderr.splitlines() == [f"skipped {expected}"]
    line = refused(magnus(project, "runs", "show", "damaged", "-c", "config.yaml"), "leads outside")
    assert "planted-payload" not in line + listed.stdout + listed.stderr


def test_a_run_file_linked_from_outside_the_folder_is_no_run(project: Path) -> None:
    two_runs(project)
    logs = project / ".run_log_store"
    (project / "stranger.json").write_bytes((logs / "fine.json").read_bytes())
    (logs / "stranger.json").symlink_to(project / "stranger.json")
    listed = magnus(project, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    assert sorted(row.split()[0] for row in listed.stdout.splitlines()[1:]) == ["damaged", "fine"]


# ---- class 19: listing from summaries --------------------------------------------------------------------
def test_listing_finished_runs_reads_their_summaries_not_their_logs(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_runs(project)
    store = FileSystemRunLogStore(log_folder=str(project / ".run_log_store"))
    expected = [summarize(store.get_run_log_by_id(run_id)) for run_id in ("damaged", "fine")]

    def no_log_is_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a run log was read to list a finished run")

    monkeypatch.setattr(FileSystemRunLogStore, "get_run_log_by_id", no_log_is_read)
    listing = FileSystemRunLogStore(log_folder=str(project / ".run_log_store")).list_runs()
    assert sorted(listing.runs, key=lambda summary: summary.run_id) == expected and listing.unreadable == []


def test_a_summary_that_does_not_match_its_log_is_not_used(project: Path) -> None:
    """A run written by magnus 0.5.1 has none; a log rewritten by another tool no longer matches its summary."""
    two_runs(project)
    logs = project / ".run_log_store"
    (logs / "fine.summary").unlink(missing_ok=True)
    document = json.loads((logs / "damaged.json").read_text())
    document["status"] = "FAIL"
    (logs / "damaged.json").write_text(json.dumps(document, indent=4))
    store = FileSystemRunLogStore(log_folder=str(logs))
    listed = {summary.run_id: summary for summary in store.list_runs().runs}
    assert listed["damaged"].status == "FAIL"
    for run_id, summary in listed.items():
        assert summary == summarize(store.get_run_log_by_id(run_id))

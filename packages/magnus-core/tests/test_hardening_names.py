"""Names that stay apart and text that stays text.

Map items that magnus 0.5.1 named alike (``1`` and ``"1"``) keep their own branches on every path
that names them; names with invisible or bidirectional characters are refused; what a terminal
shows of user text (step names, tags, messages, parameters) cannot move its cursor or forge a line.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any, List

import pytest
import yaml

from magnus import defaults
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.errors import UserInputError
from magnus.launched import execute_request
from magnus.map_position import MapPosition, item_names, position_from_json, position_json, position_names
from magnus.names import check_path_name, encode_file_name
from magnus.runtime.request import FanIn, FanOut, RunStep
from magnus.runtime.services import RunOptions
from magnus.terminal import for_terminal, json_for_terminal
from magnus.testing.executor import COLLIDING, COLLIDING_NAMES
from magnus.testing.pipelines import dag, map_of, read_run_log, run_magnus, task, write_pipeline

STEPS = """
import sys

import magnus


def fails_for_the_number_one(item) -> None:
    magnus.put_object(repr(item), "seen")
    if item == 1 and type(item) is int:
        sys.exit(1)
    assert magnus.get_object("seen") == repr(item)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "names_steps.py").write_text(textwrap.dedent(STEPS))
    config = {"run_log_store": {"type": "file-system"}, "catalog": {"type": "do-nothing"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    config["executor"] = {"type": "local", "config": {"max_workers": 2}}
    (tmp_path / "workers.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "params.yaml").write_text(json.dumps({"items": COLLIDING}))
    write_pipeline(tmp_path, {"hello": {"type": "stub", "next": "success"}}, "hello")
    return tmp_path


# ---- map items named alike by magnus 0.5.1 ------------------------------------------------------------
@pytest.mark.parametrize("config", ["config.yaml", "workers.yaml"])
def test_a_failing_item_named_like_another_fails_the_run(project: Path, config: str) -> None:
    pipeline = write_pipeline(project, {"each": map_of("names_steps.fails_for_the_number_one")}, "each")
    result = run_magnus("execute", "-f", pipeline, "-c", config, "-p", "params.yaml", "--run-id", "r", cwd=project)
    assert result.returncode == 1, result.stderr
    assert "ended FAIL at step 'each.1~number.work': the task called sys.exit(1)" in result.stderr
    branches = read_run_log(project, "r")["steps"]["each"]["branches"]
    assert list(branches) == [f"each.{name}" for name in COLLIDING_NAMES]
    for name, branch in branches.items():
        expected = "FAIL" if name == "each.1~number" else "SUCCESS"
        assert (branch["status"], branch["steps"][f"{name}.work"]["status"]) == (expected, expected)
    kept = {path.parent.name for path in (project / ".magnus" / "objects" / "r" / ".map").glob("*/seen.pickle")}
    assert kept == {encode_file_name(name) for name in COLLIDING_NAMES}, "each item keeps its own objects"


def test_the_iterations_an_engine_fans_out_over_name_each_item_alike(project: Path) -> None:
    """``magnus fan -m out --iterations-file`` (Argo's withParam, a SLURM array): each item, as the
    process doing it reads it back, logs under its own branch."""
    pipeline = write_pipeline(project, {"each": map_of("names_steps.fails_for_the_number_one")}, "each")
    run = RunOptions(pipeline, "config.yaml", "params.yaml", run_id="fanned")
    iterations = project / "iterations.json"
    assert execute_request(FanOut(run=run, step="each", iterations_file=str(iterations))) == defaults.PROCESSING
    positions = json.loads(iterations.read_text())
    assert json.loads(positions[0]) == {"item": 1, "@names": {"item": "1~number"}}
    assert json.loads(positions[1]) == {"item": "1"}, "an item keeping its name travels as in magnus 0.5.1"
    work, ends = f"each.{defaults.MAP_PLACEHOLDER}.work", f"each.{defaults.MAP_PLACEHOLDER}"
    for position in positions:
        status = execute_request(RunStep(run=run, step=work, map_variable=position))
        end = "fail" if status == defaults.FAIL else "success"
        assert execute_request(RunStep(run=run, step=f"{ends}.{end}", map_variable=position)) == status
    assert execute_request(FanIn(run=run, step="each")) == defaults.FAIL
    stored = FileSystemRunLogStore().get_run_log_by_id("fanned").steps["each"]
    assert list(stored.branches) == [f"each.{name}" for name in COLLIDING_NAMES]
    assert [branch.status for branch in stored.branches.values()] == ["FAIL"] + ["SUCCESS"] * 7
    assert stored.message == "branches that did not succeed: each.1~number"


def test_items_named_alike_get_names_of_their_own_the_same_every_time() -> None:
    assert [item_names(COLLIDING).get(index, str(value)) for index, value in enumerate(COLLIDING)] == COLLIDING_NAMES
    assert item_names(["a", "a", "a"]) == {1: "a~string", 2: "a~string~2"}
    # a name a marked item would take is another item's already: the next number
    assert item_names([1, "1", "1~number"]) == {0: "1~number~2"}
    assert item_names([{"k": 1}, "{'k': 1}"]) == {0: "{'k': 1}~object"}


@pytest.mark.parametrize("values", [[1, 2, 3], ["a", "b"], [0.5, "1", True, None, "x y", "../x", [1], {}], []])
def test_items_that_do_not_collide_keep_the_names_of_magnus_0_5_1(values: List[Any]) -> None:
    assert item_names(values) == {}


def test_a_position_travels_as_json_with_the_names_it_needs() -> None:
    outer = MapPosition({"outer": "a"}).within("inner", 1, "1~number")
    assert position_names(outer) == ["a", "1~number"]
    assert position_json(outer) == '{"outer": "a", "inner": 1, "@names": {"inner": "1~number"}}'
    again = position_from_json(json.loads(position_json(outer)))
    assert (again, position_names(again)) == ({"outer": "a", "inner": 1}, ["a", "1~number"])
    assert json.dumps(again) == '{"outer": "a", "inner": 1}', "a task sees the values only"
    plain = MapPosition({"item": 1})
    assert position_json(plain) == '{"item": 1}' and position_json(None) == ""


@pytest.mark.parametrize(
    "names",
    [
        *([], "x", {"other": "x"}, {"item": 1}, {"item": "1"}, {"item": "2~number"}, {"item": "1~string"}),
        *({"item": "1~number~1"}, {"item": "1~number~x"}, {"item": "1~number2"}),
    ],
)
def test_a_map_variable_with_bad_names_is_refused(names: Any) -> None:
    """A position names only its own value's branch: not another item's, not one no list gives it."""
    request = RunStep(run=RunOptions(run_id="r"), step="x", map_variable=json.dumps({"item": 1, "@names": names}))
    with pytest.raises(Exception, match=r"--map-variable: '@names' must map keys of the position to names of their"):
        request.map_values()


@pytest.mark.parametrize("name", ["1~number", "1~number~2", "1~number~13"])
def test_a_map_variable_names_its_value_as_the_map_would(name: str) -> None:
    request = RunStep(
        run=RunOptions(run_id="r"), step="x", map_variable=json.dumps({"item": 1, "@names": {"item": name}})
    )
    assert position_names(request.map_values()) == [name]


def test_a_map_cannot_iterate_as_the_names_key(project: Path) -> None:
    steps = {"each": {**map_of("names_steps.fails_for_the_number_one"), "iterate_as": "@names"}}
    pipeline = write_pipeline(project, steps, "each")
    result = run_magnus("execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml", cwd=project)
    assert result.returncode == 2, result.stderr
    assert "iterate_as" in result.stderr and "'@names' is magnus's own key of a map position" in result.stderr


def test_nested_maps_name_inner_items_under_their_outer_ones(project: Path) -> None:
    inner = {**map_of("names_steps.fails_for_the_number_one", iterate_on="items", iterate_as="item")}
    outer = {
        "type": "map",
        "iterate_on": "outer",
        "iterate_as": "o",
        "next": "success",
        "branch": dag("in", {"in": inner}),
    }
    pipeline = write_pipeline(project, {"out": outer}, "out")
    (project / "params.yaml").write_text(json.dumps({"items": [1, "1"], "outer": [True, "True"]}))
    result = run_magnus(
        "execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml", "--run-id", "n", cwd=project
    )
    assert result.returncode == 1, result.stderr
    branches = read_run_log(project, "n")["steps"]["out"]["branches"]
    assert list(branches) == ["out.True~boolean", "out.True"]
    for outer_name in branches:
        inner_branches = branches[outer_name]["steps"][f"{outer_name}.in"]["branches"]
        assert {name: branch["status"] for name, branch in inner_branches.items()} == {
            f"{outer_name}.in.1~number": "FAIL",
            f"{outer_name}.in.1": "SUCCESS",
        }


# ---- names that are not seen as they are ------------------------------------------------------------------
HIDDEN = {
    "pay\u202etxt.exe": "U+202E (RIGHT-TO-LEFT OVERRIDE)",
    "a\u200bb": "U+200B (ZERO WIDTH SPACE)",
    "a\u2028b": "U+2028 (LINE SEPARATOR)",
    "a\u2029b": "U+2029 (PARAGRAPH SEPARATOR)",
    "\ufeffrun": "U+FEFF (ZERO WIDTH NO-BREAK SPACE)",
    "x\u2066y": "U+2066 (LEFT-TO-RIGHT ISOLATE)",
    "a\u00a0b": "U+00A0 (NO-BREAK SPACE)",
    "a\u3000b": "U+3000 (IDEOGRAPHIC SPACE)",
    "a\x1b[2Jb": "U+001B",
    "a\x9bb": "U+009B",
}


def refused_in_one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2 and one ``Error:`` line naming ``words``, no traceback; the line."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("value", [*HIDDEN, " ", "   "])
def test_check_path_name_refuses_what_is_not_seen_as_it_is(value: str) -> None:
    with pytest.raises(UserInputError) as raised:
        check_path_name(value, "--run-id")
    message = str(raised.value)
    assert message.startswith(f"--run-id {value!r}: must not ")
    assert HIDDEN.get(value, "must not be blank (only spaces)") in message
    assert message.isprintable(), "the refusal is one line, its characters escaped"


@pytest.mark.parametrize("value", ["with space", "ünï-cødé", "日本語", "naïve café 🎉", "a b c"])
def test_check_path_name_accepts_visible_text(value: str) -> None:
    assert check_path_name(value, "--run-id") == value


@pytest.mark.parametrize("value", ["pay\u202etxt", "a\u200bb", "a\u2028b", "   "])
def test_a_run_id_not_seen_as_it_is_is_refused(project: Path, value: str) -> None:
    result = run_magnus("execute", "-c", "config.yaml", "--run-id", value, cwd=project)
    refused_in_one_line(result, f"--run-id {value!r}: must not")
    assert not (project / ".run_log_store").exists()


@pytest.mark.parametrize("name", ["pay\u202etxt", "a\u200bb", "a\u2028b", "   "])
def test_a_step_or_branch_name_not_seen_as_it_is_is_a_pipeline_problem(project: Path, name: str) -> None:
    write_pipeline(project, {name: {"type": "stub", "next": "success"}}, name, "step.yaml")
    described = HIDDEN_NAMES[name]
    refused_in_one_line(run_magnus("execute", "-f", "step.yaml", cwd=project), "step.yaml", "step name", described)
    branch = dag("s", {"s": {"type": "stub", "next": "success"}})
    steps = {"par": {"type": "parallel", "branches": {name: branch, "ok": branch}, "next": "success"}}
    write_pipeline(project, steps, "par", "branch.yaml")
    refused_in_one_line(run_magnus("execute", "-f", "branch.yaml", cwd=project), "branch name", described)


HIDDEN_NAMES = {
    "pay\u202etxt": "U+202E (RIGHT-TO-LEFT OVERRIDE)",
    "a\u200bb": "U+200B (ZERO WIDTH SPACE)",
    "a\u2028b": "U+2028 (LINE SEPARATOR)",
    "   ": "must not be blank (only spaces)",
}


def test_an_object_name_not_seen_as_it_is_fails_its_step(project: Path) -> None:
    (project / "objects.py").write_text("import magnus\n\ndef put() -> None:\n    magnus.put_object(1, 'a\\u202eb')\n")
    pipeline = write_pipeline(project, {"put": task("objects.put")}, "put")
    result = run_magnus("execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "o", cwd=project)
    assert result.returncode == 1, result.stderr
    message = read_run_log(project, "o")["steps"]["put"]["message"]
    assert "object name 'a\\u202eb': must not contain U+202E (RIGHT-TO-LEFT OVERRIDE)" in message


@pytest.mark.parametrize(
    "tag, described",
    [
        ("a\nrun x SUCCESS", "U+000A"),
        ("\x1b]0;owned\x07", "U+001B"),
        ("gpu\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("  ", "must not be blank (only spaces)"),
    ],
)
def test_a_tag_is_one_line_of_visible_text(project: Path, tag: str, described: str) -> None:
    result = run_magnus("execute", "-c", "config.yaml", "--tag", tag, cwd=project)
    refused_in_one_line(result, f"--tag {tag!r}: must not", described)
    assert not (project / ".run_log_store").exists()


def test_a_tag_of_visible_text_is_kept(project: Path) -> None:
    result = run_magnus("execute", "-c", "config.yaml", "--tag", "nightly run ü", "--run-id", "t", cwd=project)
    assert result.returncode == 0, result.stderr
    assert read_run_log(project, "t")["tag"] == "nightly run ü"


# ---- what a terminal shows of what users wrote --------------------------------------------------------
# An OSC title, a screen clear, a forged summary line, a bidirectional override, a C1 CSI.
HOSTILE = "\x1b]0;owned\x07\x1b[2J\rrun r SUCCESS in 0.01s, run log: x\n\u202e\x9b31m"
ESCAPED = "\\x1b]0;owned\\x07\\x1b[2J\\rrun r SUCCESS in 0.01s, run log: x\\n\\u202e\\x9b31m"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\r")

TERMINAL_STEPS = f"""
import os


def raises(item: str = "") -> None:
    raise ValueError({HOSTILE!r} + item)


def ends_the_interpreter(item: str) -> None:
    os._exit(3)
"""


def nothing_raw(text: str) -> None:
    """No character of the hostile text reached the terminal as it is, no line was forged."""
    for character in RAW:
        assert character not in text, f"{character!r} reached the terminal: {text!r}"
    assert not [line for line in text.splitlines() if line.startswith("run r SUCCESS")], text


@pytest.fixture
def hostile(project: Path) -> Path:
    (project / "terminal_steps.py").write_text(textwrap.dedent(TERMINAL_STEPS))
    return project


def test_a_message_cannot_drive_the_terminal_or_forge_a_line(hostile: Path) -> None:
    pipeline = write_pipeline(hostile, {"boom": task("terminal_steps.raises")}, "boom")
    result = run_magnus("execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "r", cwd=hostile)
    assert result.returncode == 1, result.stderr
    nothing_raw(result.stderr)
    lines = result.stderr.splitlines()
    assert f"Error: run 'r' ended FAIL at step 'boom': ValueError: {ESCAPED}" in lines
    progress = [line for line in lines if line.startswith("  boom FAIL in ")]
    assert len(progress) == 1 and ESCAPED not in progress[0], "said once by the traceback, once by the Error line"
    assert f"ValueError: {ESCAPED}" in lines, "the task's traceback ends with the message, escaped"
    assert read_run_log(hostile, "r")["steps"]["boom"]["message"] == f"ValueError: {HOSTILE}", "recorded as it is"


def test_a_map_value_cannot_drive_the_terminal_through_its_branch_name(hostile: Path) -> None:
    pipeline = write_pipeline(hostile, {"each": map_of("terminal_steps.raises")}, "each")
    (hostile / "params.yaml").write_text(json.dumps({"items": [HOSTILE]}))
    result = run_magnus(
        "execute", "-f", pipeline, "-c", "workers.yaml", "-p", "params.yaml", "--run-id", "r", cwd=hostile
    )
    assert result.returncode == 1, result.stderr
    nothing_raw(result.stderr)
    assert f"Error: run 'r' ended FAIL at step 'each.{ESCAPED}.work': ValueError: {ESCAPED}" in result.stderr


def test_the_line_of_a_process_that_died_shows_a_map_value_escaped(hostile: Path) -> None:
    pipeline = write_pipeline(hostile, {"each": map_of("terminal_steps.ends_the_interpreter")}, "each")
    (hostile / "params.yaml").write_text(json.dumps({"items": [HOSTILE]}))
    result = run_magnus(
        "execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r", cwd=hostile
    )
    assert result.returncode == 1, result.stderr
    nothing_raw(result.stderr)
    assert f"Error: step 'each.{ESCAPED}.work' of run 'r': its process exited with code 3" in result.stderr


def test_magnus_runs_shows_what_users_wrote_escaped(hostile: Path) -> None:
    steps = {"boom": task("terminal_steps.raises", on_failure="each"), "each": map_of("terminal_steps.raises")}
    pipeline = write_pipeline(hostile, steps, "boom")
    (hostile / "params.yaml").write_text(json.dumps({"items": [HOSTILE], "note": HOSTILE}))
    for run_id in ("r", "s"):
        run_magnus("execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id, cwd=hostile)
    # a tag written by another tool (magnus refuses such a tag itself)
    kept = hostile / ".run_log_store" / "r.json"
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "tag": HOSTILE}))
    for command in (["show", "r"], ["list"], ["diff", "r", "s"], ["show", "r", "--json"]):
        result = run_magnus("runs", *command, "-c", "config.yaml", cwd=hostile)
        assert result.returncode == 0, result.stderr
        nothing_raw(result.stdout)
        assert ESCAPED in result.stdout or "\\u001b]0;owned" in result.stdout, (command, result.stdout)
    shown = run_magnus("runs", "show", "r", "-c", "config.yaml", cwd=hostile).stdout
    assert f"run r  FAIL  tag {ESCAPED}" in shown.splitlines()
    assert f"[{ESCAPED}]" in shown, "a map item's branch, escaped"
    as_json = run_magnus("runs", "show", "r", "--json", "-c", "config.yaml", cwd=hostile).stdout
    assert json.loads(as_json) == json.loads(kept.read_text()), "the same JSON, shown safely"


@pytest.mark.parametrize(
    "text, shown",
    [
        ("plain text, ünï 日本 🎉", "plain text, ünï 日本 🎉"),
        ("a\x00b\x7fc", "a\\x00b\\x7fc"),
        ("tab\there\r\n", "tab\\there\\r\\n"),
        ("\u200b\u2028\u2029\ufeff\u2066", "\\u200b\\u2028\\u2029\\ufeff\\u2066"),
        ("tag \U000e0041", "tag \\U000e0041"),
        ("lone \udc80", "lone \\udc80"),
    ],
)
def test_for_terminal_escapes_only_what_would_drive_or_hide(text: str, shown: str) -> None:
    assert for_terminal(text) == shown
    assert for_terminal(shown) == shown, "shown text is printable: escaping it again changes nothing"


def test_json_for_terminal_keeps_the_json() -> None:
    document = json.dumps({"a": HOSTILE, "tag \U000e0041": ["\u2028"]}, ensure_ascii=False, indent=4)
    shown = json_for_terminal(document)
    assert json.loads(shown) == json.loads(document)
    nothing_raw(shown)
    assert "\U000e0041" not in shown and "\u2028" not in shown


def test_a_fan_out_writes_its_items_to_a_url(project: Path) -> None:
    """``--iterations-file`` may be an object store's URL (AWS Step Functions' Map reads the items from
    S3): a ``file://`` URL is written where it points, not to a folder named ``file:``."""
    pipeline = write_pipeline(project, {"each": map_of("names_steps.fails_for_the_number_one")}, "each")
    run = RunOptions(pipeline, "config.yaml", "params.yaml", run_id="fanned-to-url")
    url = f"file://{project / 'items.json'}"
    assert execute_request(FanOut(run=run, step="each", iterations_file=url)) == defaults.PROCESSING
    assert len(json.loads((project / "items.json").read_text())) == len(COLLIDING_NAMES)

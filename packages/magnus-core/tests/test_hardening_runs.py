"""Runs that fail say so, runs keep their objects to themselves, and secrets stay out of what runs keep.

The failures here were processes' (an exit code, a hang, Ctrl-C, two runs at once): they are
tested on ``python -m magnus`` processes started in a project folder.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional

import pytest
import yaml

from magnus import entrypoints
from magnus.capture import captured_output
from magnus.redaction import Redactor
from magnus.runtime.services import RunOptions
from magnus.secrets import BaseSecrets
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus
from magnus.testing.pipelines import start_magnus as start
from magnus.tracker import BaseExperimentTracker

STEPS = '''
import json
import logging
import os
import sys
import time
from pathlib import Path

import magnus


def exits(how: str) -> None:
    if how == "exit()":
        exit()
    sys.exit(int(how))


def dies_in_one_item(item: int, how: str) -> None:
    if item == 1:
        sys.exit(1) if how == "sys.exit(1)" else os._exit(3)
    time.sleep(0.2)


def waits(item: int = 0) -> None:
    """Says it started (a file), then sleeps until interrupted."""
    Path(f"started-{item}").write_text("")
    time.sleep(60)


def puts(tag: str) -> None:
    magnus.put_object({"tag": tag}, "shared")
    Path(f"put-{tag}").write_text("")
    while not all(Path(f"put-{other}").exists() for other in ("one", "two")):
        time.sleep(0.05)  # both runs have put theirs before either reads
    assert magnus.get_object("shared") == {"tag": tag}


def reads(tag: str) -> None:
    assert magnus.get_object("shared") == {"tag": tag}


def puts_per_item(item: str) -> None:
    magnus.put_object(f"from {item}", "mine")
    time.sleep(0.3)
    assert magnus.get_object("mine") == f"from {item}"
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hardening_steps.py").write_text(textwrap.dedent(STEPS))
    config = {"run_log_store": {"type": "file-system"}, "catalog": {"type": "do-nothing"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    config["executor"] = {"type": "local", "config": {"max_workers": 2}}
    (tmp_path / "workers.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


# ---- exit codes that tell the truth -------------------------------------------------------------------
@pytest.mark.parametrize("how", ["0", "2", "exit()"])
def test_a_task_calling_sys_exit_fails_its_step_and_the_run_exits_1(project: Path, how: str) -> None:
    pipeline = write_pipeline(project, {"quits": task("hardening_steps.exits")}, "quits", "p.yaml")
    (project / "params.yaml").write_text(yaml.safe_dump({"how": how}))
    result = magnus("execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r", cwd=project)
    code = "" if how == "exit()" else how
    assert result.returncode == 1, result.stderr
    assert f"Error: run 'r' ended FAIL at step 'quits': the task called sys.exit({code})" in result.stderr.splitlines()
    log = read_log(project, "r")
    step = log["steps"]["quits"]
    assert (log["status"], step["status"], len(step["attempts"])) == ("FAIL", "FAIL", 1)
    assert step["attempts"][0]["message"] == f"the task called sys.exit({code})"


@pytest.mark.parametrize("how", ["sys.exit(1)", "os._exit(3)"])
def test_a_map_item_that_ends_its_worker_fails_its_branch_and_the_run_ends(project: Path, how: str) -> None:
    pipeline = write_pipeline(project, {"each": map_of("hardening_steps.dies_in_one_item")}, "each", "p.yaml")
    (project / "params.yaml").write_text(yaml.safe_dump({"items": [0, 1, 2, 3], "how": how}))
    started = time.monotonic()
    result = magnus(
        "execute", "-f", pipeline, "-c", "workers.yaml", "-p", "params.yaml", "--run-id", "r", cwd=project, timeout=60
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    assert "ended FAIL at step 'each.1.work': " in result.stderr  # the item that failed, not only its map
    log = read_log(project, "r")
    branches = log["steps"]["each"]["branches"]
    assert {name: branch["status"] for name, branch in branches.items()} == {
        "each.0": "SUCCESS",
        "each.1": "FAIL",
        "each.2": "SUCCESS",
        "each.3": "SUCCESS",
    }
    failed = branches["each.1"]["steps"]["each.1.work"]
    expected = (
        "the task called sys.exit(1)"
        if how == "sys.exit(1)"
        else "its worker process exited with code 3, before recording the step"
    )
    assert (failed["status"], failed["message"]) == ("FAIL", expected)


def wait_for(path: Path, process: "subprocess.Popen[str]", seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("config", ["config.yaml", "workers.yaml"])
def test_ctrl_c_ends_the_run_fail_with_the_step_interrupted_and_exit_130(project: Path, config: str) -> None:
    if config == "config.yaml":
        pipeline = write_pipeline(project, {"wait": task("hardening_steps.waits")}, "wait", "p.yaml")
    else:
        pipeline = write_pipeline(project, {"wait": map_of("hardening_steps.waits")}, "wait", "p.yaml")
    (project / "params.yaml").write_text(yaml.safe_dump({"items": [0, 1, 2]}))
    process = start("execute", "-f", pipeline, "-c", config, "-p", "params.yaml", "--run-id", "r", cwd=project)
    for item in (0,) if config == "config.yaml" else (0, 1):
        wait_for(project / f"started-{item}", process)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 15
    assert process.returncode == 130, stderr
    assert "Error: interrupted" in stderr.splitlines()
    assert "Traceback" not in stderr and "Aborted" not in stderr
    log = read_log(project, "r")
    step = log["steps"]["wait"]
    assert (log["status"], step["status"], step["message"]) == ("FAIL", "FAIL", "interrupted")
    if config == "config.yaml":
        assert [attempt["message"] for attempt in step["attempts"]] == ["interrupted"]
    else:  # two items were running (each recorded interrupted), the third never started
        branches = step["branches"]
        assert {branch["status"] for branch in branches.values()} == {"FAIL"}
        for running in ("wait.0", "wait.1"):
            work = branches[running]["steps"][f"{running}.work"]
            assert (work["status"], work["message"]) == ("FAIL", "interrupted")
        assert not branches["wait.2"]["steps"]


# ---- objects kept per run --------------------------------------------------------------------------------
def test_runs_at_once_keep_their_objects_apart_and_map_items_too(project: Path) -> None:
    steps = {
        "put": task("hardening_steps.puts", "each"),
        "each": map_of("hardening_steps.puts_per_item", "read"),
        "read": task("hardening_steps.reads"),
    }
    pipeline = write_pipeline(project, steps, "put", "p.yaml")
    processes = []
    for tag in ("one", "two"):
        (project / f"{tag}.yaml").write_text(yaml.safe_dump({"tag": tag, "items": ["a", "b", "../c", "*"]}))
        processes.append(
            start("execute", "-f", pipeline, "-c", "workers.yaml", "-p", f"{tag}.yaml", "--run-id", tag, cwd=project)
        )
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    assert not list(project.glob("*.pickle")), "nothing is kept in the working folder"
    kept = sorted(path.relative_to(project).as_posix() for path in (project / ".magnus").rglob("*.pickle"))
    assert ".magnus/objects/one/shared.pickle" in kept and ".magnus/objects/two/shared.pickle" in kept
    assert ".magnus/objects/one/.map/%2E.%2Fc/mine.pickle" in kept  # "../c", encoded: one folder


def test_object_names_that_are_paths_are_refused(project: Path) -> None:
    (project / "bad_names.py").write_text("import magnus\n\ndef bad() -> None:\n    magnus.put_object(1, '../x')\n")
    pipeline = write_pipeline(project, {"bad": task("bad_names.bad")}, "bad", "p.yaml")
    result = magnus("execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "r", cwd=project)
    assert result.returncode == 1
    assert "object name '../x': must not contain '/'" in result.stderr
    assert not (project.parent / "x.pickle").exists()


# ---- secrets kept out ------------------------------------------------------------------------------------
SECRET = "pa\"ss\\wörd'42"
LEAKS = f"""
import json
import logging
import sys

SECRET = {SECRET!r}


def leaks(token: str) -> None:
    sys.stdout.write("split: " + SECRET[:4])
    sys.stdout.write(SECRET[4:] + "\\n")
    logging.getLogger("a.task").warning("logged: %s", SECRET)
    raise ValueError(f"escaped: {{json.dumps(SECRET)}} and {{[SECRET]}}")
"""


class KnownSecrets(BaseSecrets):
    """A backend that declares its values up front, as a dotenv file does."""

    service_name: ClassVar[str] = "known"

    def values_to_mask(self) -> List[str]:
        return [SECRET]

    def get(self, name: str) -> str:
        return SECRET


class RecordingTracker(BaseExperimentTracker):
    service_name: ClassVar[str] = "recording"
    started_with: ClassVar[Dict[str, Any]] = {}

    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        RecordingTracker.started_with = dict(parameters or {})


def test_secrets_are_masked_in_parameters_trackers_output_and_logging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "leaky.py").write_text(textwrap.dedent(LEAKS))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"token": SECRET, "url": f"https://u:{SECRET}@host"}))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    pipeline = write_pipeline(tmp_path, {"leak": task("leaky.leaks")}, "leak", "p.yaml")
    real = entrypoints.create_service
    made = {"secrets": KnownSecrets(), "experiment_tracker": RecordingTracker()}

    def create(name: str, block: Dict[str, Any], source: str = "configuration") -> Any:
        return made.get(name) or real(name, block, source)

    monkeypatch.setattr(entrypoints, "create_service", create)
    console = logging.StreamHandler(sys.stderr)  # as the CLI's logging.basicConfig makes before any step
    logging.getLogger().addHandler(console)
    try:
        options = RunOptions(pipeline_file=pipeline, configuration_file="config.yaml", parameters_file="params.yaml")
        run_log = entrypoints.run_pipeline(entrypoints.load_pipeline(pipeline), options)
    finally:
        logging.getLogger().removeHandler(console)
    printed = capfd.readouterr()
    stored = (tmp_path / ".run_log_store" / f"{run_log.run_id}.json").read_text()

    assert run_log.parameters == {"token": "***", "url": "https://u:***@host"}
    assert RecordingTracker.started_with == {"token": "***", "url": "https://u:***@host"}
    assert run_log.steps["leak"].message == "ValueError: escaped: \"***\" and ['***']"
    assert "split: ***\n" in printed.out
    assert "logged: ***" in printed.err
    for text in (printed.out, printed.err, stored):
        for form in (SECRET, json.dumps(SECRET)[1:-1], repr(SECRET)[1:-1], SECRET[4:]):
            assert form not in text


def test_the_execution_log_holds_masked_prints_and_logging(capfd: pytest.CaptureFixture[str]) -> None:
    redactor = Redactor()
    redactor.add(["abcdef"])
    console = logging.StreamHandler(sys.stderr)
    logger = logging.getLogger("a.task")
    logger.addHandler(console)
    logger.propagate = False
    try:
        output = io.StringIO()
        with captured_output(redactor, output):
            print("abc", end="")
            print("def and ab", end="")  # "ab" may begin the secret: held back
            print("c.")  # ...it did not: written out
            logger.warning("secret %s in a record", "abcdef")
            try:
                raise RuntimeError(repr({"k": "abcdef"}))
            except RuntimeError:
                logger.exception("failed")
            sys.stdout.write("ends with abcde")  # held until the block ends
    finally:
        logger.removeHandler(console)
        logger.propagate = True
    log = output.getvalue()
    assert log.startswith("*** and abc.\nsecret *** in a record\nfailed\n")
    assert "RuntimeError: {'k': '***'}" in log and log.endswith("ends with abcde")
    printed = capfd.readouterr()
    assert "abcdef" not in log + printed.out + printed.err
    assert printed.out == "*** and abc.\nends with abcde"


def test_the_escaped_forms_of_a_secret_are_masked() -> None:
    redactor = Redactor()
    redactor.add([SECRET, "abc"])  # shorter than 4 characters: not masked
    for form in (SECRET, json.dumps(SECRET)[1:-1], json.dumps(SECRET, ensure_ascii=False)[1:-1], repr(SECRET)[1:-1]):
        assert redactor.redact(f"<{form}>") == "<***>"
    assert redactor.redact("abc") == "abc"
    assert redactor.unfinished("text then pa") == 2 and redactor.unfinished("nothing") == 0


def test_a_secret_written_in_pieces_with_a_flush_between_is_masked(capfd: pytest.CaptureFixture[str]) -> None:
    """A flush between the pieces wrote out the first piece: neither the console nor the log masked it."""
    redactor = Redactor()
    redactor.add([SECRET])
    output = io.StringIO()
    with captured_output(redactor, output):
        print("token:", SECRET[:5], end="")
        sys.stdout.flush()  # the first piece may be the start of the secret: it stays held
        print(SECRET[5:], "and more")
        print("progress", end="")
        sys.stdout.flush()  # nothing here could begin the secret: written out at once
        assert capfd.readouterr().out.endswith("progress")
    printed = capfd.readouterr().out
    assert output.getvalue() == "token: *** and more\nprogress"
    assert SECRET[:5] not in printed and SECRET[5:] not in printed

"""What a person sees on stderr when running a pipeline: progress, a summary, interrupts, errors.

Every test runs ``magnus execute`` in a real process on a real pipeline and reads what it printed
and the run log it left.
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from magnus.testing.pipelines import magnus_command, map_of, task, write_pipeline
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus
from magnus.testing.pipelines import start_magnus as start

STEPS = """
import os
import time
from pathlib import Path


def first() -> None:
    print("first ran")


def second() -> None:
    if not Path("fixed").exists():
        return helper()


def helper() -> None:
    raise RuntimeError("not fixed yet")


def item(item: int) -> None:
    time.sleep(0.025)
    if item == 7 and not Path("fixed").exists():
        raise ValueError("item 7 is bad")


def waits(item: int = 0) -> None:
    Path(f"started-{item}").touch()
    if not Path("fixed").exists():
        time.sleep(60)


def needs(missing: int) -> None:
    pass
"""


def pasted(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command a summary printed, as a person pasting it would (``magnus`` on the PATH)."""
    argv = shlex.split(line.removeprefix("resume with: "))
    assert argv[0] == "magnus"
    return magnus(*argv[1:], cwd=cwd)


def pipeline(project: Path, start_at: str, steps: Dict[str, Any]) -> str:
    return write_pipeline(project, steps, start_at)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "progress_steps.py").write_text(STEPS)
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 2\n"
    )
    return tmp_path


def lines_of(stderr: str) -> List[str]:
    return stderr.strip().splitlines()


# ---- progress and summary ----------------------------------------------------------------------------
def test_a_run_shows_each_step_and_ends_with_a_summary(project: Path) -> None:
    pipeline(project, "first", {"first": task("progress_steps.first", "each"), "each": map_of("progress_steps.item")})
    (project / "params.yaml").write_text("items: [1, 2, 3]\n")
    (project / "fixed").touch()
    result = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r1", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["first ran"]  # progress never mixes with what steps print
    lines = lines_of(result.stderr)
    assert lines[0] == "run r1 started"
    assert lines[1:3] == ["  first started", lines[2]] and re.fullmatch(r"  first SUCCESS in \d+\.\d\ds", lines[2])
    assert lines[3] == "  each started"
    assert re.fullmatch(r"  each SUCCESS in \d+\.\d\ds \(3/3 items\)", lines[4]), lines
    assert re.fullmatch(r"run r1 SUCCESS in \d+\.\d\ds, run log: \.run_log_store/r1\.json", lines[-1]), lines
    assert len(lines) == 6 and "\033[" not in result.stderr  # not a terminal: no colour, no resume line


def test_quiet_prints_nothing_but_errors(project: Path) -> None:
    pipeline(
        project, "first", {"first": task("progress_steps.first", "second"), "second": task("progress_steps.second")}
    )
    (project / "fixed").touch()
    result = magnus("execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    assert (result.returncode, result.stderr) == (0, "")
    (project / "fixed").unlink()
    result = magnus("execute", "--quiet", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "q", cwd=project)
    assert result.returncode == 1
    assert lines_of(result.stderr)[-1] == "Error: run 'q' ended FAIL at step 'second': RuntimeError: not fixed yet"
    assert "started" not in result.stderr and "resume" not in result.stderr


def test_a_failed_run_ends_with_the_command_that_resumes_it_and_pasting_it_does(project: Path) -> None:
    steps = {"first": task("progress_steps.first", "second"), "second": task("progress_steps.second")}
    pipeline(project, "first", steps)
    result = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--tag", "my tag", "--run-id", "r1", cwd=project
    )
    assert result.returncode == 1
    lines = lines_of(result.stderr)
    assert "  second FAIL in" in result.stderr and ": RuntimeError: not fixed yet" in result.stderr
    assert lines[-3] == "Error: run 'r1' ended FAIL at step 'second': RuntimeError: not fixed yet"
    assert re.fullmatch(r"run r1 FAIL in \d+\.\d\ds, run log: \.run_log_store/r1\.json", lines[-2]), lines
    assert lines[-1] == "resume with: magnus execute -f pipeline.yaml -c config.yaml --tag 'my tag' --use-cached r1"

    (project / "fixed").touch()
    resumed = pasted(lines[-1], project)
    assert resumed.returncode == 0, resumed.stderr
    run_id = re.search(r"^run (\S+) started \(resuming run r1\)$", resumed.stderr, re.M)
    assert run_id, resumed.stderr
    assert "  first reused (succeeded in the run resumed)" in resumed.stderr
    assert "first ran" not in resumed.stdout
    log = read_log(project, run_id.group(1))
    assert (log["status"], log["original_run_id"], log["tag"]) == ("SUCCESS", "r1", "my tag")
    assert log["steps"]["first"]["mock"] is True and log["steps"]["second"]["mock"] is False


def test_a_run_log_kept_in_memory_is_announced_and_no_resume_is_offered(project: Path) -> None:
    pipeline(project, "second", {"second": task("progress_steps.second")})
    result = magnus("execute", "-f", "pipeline.yaml", "--run-id", "m", cwd=project)
    assert result.returncode == 1
    assert "note: the run log is kept in memory only and is lost when the run ends" in result.stderr
    lines = lines_of(result.stderr)
    assert re.fullmatch(r"run m FAIL in \d+\.\d\ds, run log: memory only \(lost when the run ends\)", lines[-2])
    assert lines[-1].startswith("to resume a failed run, keep its run log: pass -c")
    assert "--use-cached" not in lines[-1]


def test_log_level_info_shows_magnus_own_lines(project: Path) -> None:
    pipeline(project, "first", {"first": task("progress_steps.first")})
    result = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "i", "--log-level", "info", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert "INFO magnus: run i: executor local, run_log_store file-system" in result.stderr
    assert "INFO magnus: run i ended SUCCESS" in result.stderr
    quiet = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "w", cwd=project)
    assert "INFO" not in quiet.stderr


@pytest.mark.parametrize("config", ["config.yaml", "workers.yaml"])
def test_a_large_map_prints_throttled_counts(project: Path, config: str) -> None:
    pipeline(project, "each", {"each": map_of("progress_steps.item")})
    (project / "params.yaml").write_text(yaml.safe_dump({"items": list(range(200))}))
    started = time.monotonic()
    result = magnus("execute", "-f", "pipeline.yaml", "-c", config, "-p", "params.yaml", "--run-id", "big", cwd=project)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    counts = [line for line in lines_of(result.stderr) if line.startswith("  each: ")]
    assert counts, result.stderr  # 200 items of 25 ms each take longer than one interval (2 s)
    assert len(counts) <= elapsed / 2 + 1, counts  # one line every 2 s at most, not one per item
    for line in counts:
        match = re.fullmatch(r"  each: ([\d,]+)/200 items(, 1 failed)?", line)
        assert match and 0 < int(match.group(1).replace(",", "")) < 200, line
    assert counts[-1].endswith(", 1 failed")
    assert re.search(r"^  each FAIL in \S+ \(200/200 items, 1 failed\)$", result.stderr, re.M), result.stderr
    assert "Traceback" in result.stderr and "item 7 is bad" in result.stderr


def _stderr_on_a_terminal(project: Path, env: Dict[str, str]) -> str:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*magnus_command(), "execute", "-f", "pipeline.yaml", "-c", "config.yaml"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env={**os.environ, **env},
    )
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=60)
    os.close(controller)
    return seen.decode()


def test_colour_on_a_terminal_unless_no_color(project: Path) -> None:
    pipeline(project, "first", {"first": task("progress_steps.first")})
    env = {key: "" for key in ("NO_COLOR",)}
    coloured = _stderr_on_a_terminal(project, {**env, "TERM": "xterm"})
    assert "\033[32mSUCCESS\033[0m" in coloured
    plain = _stderr_on_a_terminal(project, {"NO_COLOR": "1", "TERM": "xterm"})
    assert "SUCCESS" in plain and "\033[" not in plain


# ---- interrupts --------------------------------------------------------------------------------------
def wait_for(path: Path, process: "subprocess.Popen[str]", seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("config", ["config.yaml", "workers.yaml"])
def test_an_interrupted_run_ends_fail_130_and_resumes(project: Path, how: signal.Signals, config: str) -> None:
    steps = {"first": task("progress_steps.first", "each"), "each": map_of("progress_steps.waits")}
    pipeline(project, "first", steps)
    (project / "params.yaml").write_text("items: [0, 1, 2]\n")
    process = start("execute", "-f", "pipeline.yaml", "-c", config, "-p", "params.yaml", "--run-id", "r", cwd=project)
    for item in (0,) if config == "config.yaml" else (0, 1):
        wait_for(project / f"started-{item}", process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr
    lines = lines_of(stderr)
    assert lines[-3] == "Error: interrupted"
    assert re.fullmatch(r"run r FAIL \(interrupted\) in \S+, run log: \.run_log_store/r\.json", lines[-2]), lines
    assert lines[-1] == "resume with: magnus execute -f pipeline.yaml -c " + config + " -p params.yaml --use-cached r"
    assert re.search(r"^  each FAIL in \S+ \(\d/3 items(, \d failed)?\): interrupted$", stderr, re.M), stderr
    log = read_log(project, "r")
    step = log["steps"]["each"]
    assert (log["status"], step["status"], step["message"]) == ("FAIL", "FAIL", "interrupted")
    work = step["branches"]["each.0"]["steps"]["each.0.work"]
    assert (work["status"], work["message"]) == ("FAIL", "interrupted")

    (project / "fixed").touch()
    resumed = pasted(lines[-1], project)
    assert resumed.returncode == 0, resumed.stderr
    assert "  first reused" in resumed.stderr and "  each SUCCESS" in resumed.stderr


# ---- errors ------------------------------------------------------------------------------------------
def test_a_failing_function_shows_only_the_users_frames(project: Path) -> None:
    pipeline(project, "second", {"second": task("progress_steps.second")})
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    assert result.returncode == 1
    trace = result.stderr[result.stderr.index("Traceback") :].splitlines()
    files = [line.strip() for line in trace if line.strip().startswith("File ")]
    assert len(files) == 2 and all("progress_steps.py" in line for line in files), trace
    assert "in second" in files[0] and "in helper" in files[1]
    debug = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--log-level", "DEBUG", cwd=project)
    assert os.path.join("magnus", "runtime", "step.py") in debug.stderr  # everything, when asked
    assert (
        os.path.join("magnus", "runtime", "step.py")
        in magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project, env={"MAGNUS_DEBUG": "1"}).stderr
    )


def test_a_framework_error_in_a_step_is_one_line_without_magnus_frames(project: Path) -> None:
    pipeline(project, "needs", {"needs": task("progress_steps.needs")})
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "e", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "File " not in result.stderr, result.stderr
    # found before the function ran: its one line, on the step's line and the last, no traceback
    assert "\n  needs FAIL in " in result.stderr
    assert (
        "Error: run 'e' ended FAIL at step 'needs': needs needs parameter 'missing', which is not set" in result.stderr
    )


def test_bad_input_is_one_line_and_exit_2(project: Path) -> None:
    (project / "pipeline.yaml").write_text(textwrap.dedent("dag:\n  start_at: nowhere\n  steps: {}\n"))
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    assert result.returncode == 2
    assert len(lines_of(result.stderr)) == 1 and lines_of(result.stderr)[0].startswith("Error: pipeline.yaml")

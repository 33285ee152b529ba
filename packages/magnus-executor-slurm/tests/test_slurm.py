"""What SLURM users need beyond the contract, against the real cluster of the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from magnus import defaults
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.datastore.models import RunLog
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing.executor import outcome
from magnus_executor_slurm.cluster import LocalCluster

pytestmark = pytest.mark.service

STEPS = """
import os
import time
from pathlib import Path


def noop() -> None:
    pass


def item_seen(item: int) -> dict:
    return {f"seen_{item}": True}


def sleeps() -> None:
    print("going to sleep", flush=True)
    time.sleep(600)


def dies_once() -> None:
    if not Path("died.flag").exists():
        Path("died.flag").write_text("")
        print("dying without a word", flush=True)
        os._exit(3)


def breaks_for(item: int) -> None:
    if item == 2 and Path("broken.flag").exists():
        raise ValueError(f"item {item} is broken")
"""
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def task(command: str, next_step: str = "success", **extra: Any) -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": next_step, **extra}


def setup(project: Path, steps: Dict[str, Any], start_at: str, items: int = 3, **executor: Any) -> None:
    (project / "slurm_steps.py").write_text(textwrap.dedent(STEPS))
    (project / "parameters.yaml").write_text(yaml.safe_dump({"items": list(range(items))}))
    dag = {"start_at": start_at, "steps": {**steps, **TERMINALS}}
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag}))
    config = {
        "executor": {"type": "slurm", "config": {"poll_interval": 0.5, **executor}},
        "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))


def run(run_id: str, use_cached: str = "") -> RunLog:
    run_log = execute("pipeline.yaml", "config.yaml", "parameters.yaml", run_id=run_id, use_cached=use_cached)
    assert run_log is not None
    return run_log


def a_map(step: Dict[str, Any], next_step: str = "success") -> Dict[str, Any]:
    branch = {"start_at": "work", "steps": {"work": step, **TERMINALS}}
    return {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": next_step}


def magnus(*arguments: str) -> "subprocess.Popen[str]":
    """``magnus execute`` as a user starts it, in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "magnus", "execute", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def jobs_of(cluster: LocalCluster, run_id: str, states: str = "all") -> List[List[str]]:
    listed = cluster.run("squeue", "-h", "-r", f"--states={states}", f"--name=magnus-{run_id}", "-o", "%i|%T")
    return [line.split("|") for line in listed.stdout.split()]


def status_queries_logged(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put logging stand-ins for squeue, sacct and scontrol first on the PATH; the log they append to."""
    log = folder / "queries.log"
    folder.mkdir()
    for command in ("squeue", "sacct", "scontrol"):
        real = subprocess.run(["which", command], capture_output=True, text=True, check=True).stdout.strip()
        shim = folder / command
        shim.write_text(f'#!/bin/sh\necho "$(date +%s.%N) {command} $*" >> {log}\nexec {real} "$@"\n')
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def test_a_map_of_50_items_is_one_job_array_and_one_query_per_poll(
    cluster: LocalCluster, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poll_interval = 2.0
    setup(project, {"each": a_map(task("slurm_steps.item_seen"))}, "each", items=50, poll_interval=poll_interval)
    log = status_queries_logged(project / "shims", monkeypatch)
    started = time.time()
    run_log = run("array-50")
    elapsed = time.time() - started
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    assert all(run_log.parameters[f"seen_{item}"] for item in range(50))
    # The scheduler's own record: 50 finished array tasks of one array job, nothing else.
    ours = [job for job in cluster.completed_jobs() if job["Name"] == "magnus-array-50"]
    assert len(ours) == 50
    assert {job.get("ArrayJobId") for job in ours} == {ours[0]["ArrayJobId"]}
    assert sorted(int(job["ArrayTaskId"]) for job in ours) == list(range(50))
    # Status queries: all of the run's jobs at once (by name), never one job, about one per poll_interval.
    queries = log.read_text().splitlines()
    assert queries and all("--name=magnus-array-50" in line for line in queries if " squeue " in line)
    assert not [line for line in queries if " -j " in line and " sacct " not in line]
    per_minute = len(queries) / (elapsed / 60)
    backoff_start = 10  # the quick polls right after the submission
    assert len(queries) <= elapsed / poll_interval + backoff_start, per_minute
    print(f"{len(queries)} status queries in {elapsed:.0f} s: {per_minute:.0f} per minute for 50 jobs")


def test_a_failing_step_names_its_job_and_output(cluster: LocalCluster, project: Path) -> None:
    setup(project, {"one": task("slurm_steps.noop", "two"), "two": task("slurm_steps.nothere")}, "one")
    run_log = run("failing-1")
    assert run_log.status == defaults.FAIL
    message = run_log.steps["two"].message
    assert "SLURM job" in message and "FAILED" in message and "two-" in message


def test_a_retry_resubmits_a_job_that_died(cluster: LocalCluster, project: Path) -> None:
    setup(project, {"flaky": task("slurm_steps.dies_once", max_attempts=2)}, "flaky")
    run_log = run("retry-1")
    assert run_log.status == defaults.SUCCESS, run_log.steps["flaky"].message
    attempts = run_log.steps["flaky"].attempts
    assert attempts[0].status == defaults.FAIL and "dying without a word" in attempts[0].message
    assert "exited with code 3" in attempts[0].message  # said by the process watching the step's
    assert len(attempts) == 2 and attempts[-1].status == defaults.SUCCESS
    assert len([job for job in cluster.completed_jobs() if job["Name"] == "magnus-retry-1"]) == 2


def test_a_job_cancelled_from_outside_fails_its_step(cluster: LocalCluster, project: Path) -> None:
    setup(
        project,
        {"long": task("slurm_steps.sleeps", "after", on_failure="after"), "after": task("slurm_steps.noop")},
        "long",
    )
    walk = magnus("-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "outside-1")
    running = wait_for(lambda: [j for j, s in jobs_of(cluster, "outside-1") if s == "RUNNING"], 60, "the job to run")
    cluster.run("scancel", running[0])
    _, errors = walk.communicate(timeout=60)
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("outside-1")
    assert outcome(run_log)["long"] == defaults.FAIL, errors
    message = run_log.steps["long"].message
    assert f"SLURM job {running[0]} was cancelled: CANCELLED" in message
    assert f"JOB {running[0]} ON {cluster.node} CANCELLED" in message  # the tail of the job's output
    assert run_log.steps["after"].status == defaults.SUCCESS  # on_failure routes as locally
    assert run_log.status == defaults.SUCCESS


def test_ctrl_c_cancels_every_job_of_the_run(cluster: LocalCluster, project: Path) -> None:
    setup(project, {"each": a_map(task("slurm_steps.sleeps"))}, "each", items=4)
    walk = magnus("-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "interrupted-1")
    wait_for(lambda: [s for _, s in jobs_of(cluster, "interrupted-1") if s == "RUNNING"], 60, "a job to run")
    walk.send_signal(signal.SIGINT)
    _, errors = walk.communicate(timeout=60)
    assert walk.returncode == 130, errors
    assert "--use-cached interrupted-1" in errors
    assert not jobs_of(cluster, "interrupted-1", states="PENDING,RUNNING,CONFIGURING")
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("interrupted-1")
    assert run_log.status == defaults.FAIL
    branches = run_log.steps["each"].branches
    assert {branch.status for branch in branches.values()} == {defaults.FAIL}
    for branch in branches.values():  # a step its job had begun is FAIL and says why
        for step in branch.steps.values():
            assert step.status == defaults.FAIL and "CANCELLED" in step.message


def test_detached_run_finishes_with_no_magnus_process_here(cluster: LocalCluster, project: Path) -> None:
    setup(
        project,
        {"one": task("slurm_steps.noop", "each"), "each": a_map(task("slurm_steps.item_seen"))},
        "one",
        detach=True,
    )
    started = time.monotonic()
    submitted = subprocess.run(
        [
            sys.executable,
            "-m",
            "magnus",
            "execute",
            "-f",
            "pipeline.yaml",
            "-c",
            "config.yaml",
            "-p",
            "parameters.yaml",
            "--run-id",
            "detached-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submitted.returncode == 0, submitted.stderr
    assert "run 'detached-1' submitted: SLURM job" in submitted.stdout
    assert time.monotonic() - started < 30
    store = FileSystemRunLogStore(log_folder=".run_log_store")

    def finished() -> bool:
        return store.run_log_exists("detached-1") and store.get_run_log_by_id("detached-1").status in (
            defaults.SUCCESS,
            defaults.FAIL,
        )

    wait_for(finished, 120, "the detached run to finish")
    run_log = store.get_run_log_by_id("detached-1")
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    assert run_log.parameters["seen_2"] is True
    walks = wait_for(
        lambda: [job for job in cluster.completed_jobs() if job["Name"] == "magnus-detached-1-walk"],
        30,
        "the walk's job to end",
    )
    assert len(walks) == 1 and walks[0]["JobState"] == "COMPLETED"


def test_resume_reruns_only_the_map_items_that_failed(cluster: LocalCluster, project: Path) -> None:
    (project / "broken.flag").write_text("")
    setup(project, {"first": task("slurm_steps.noop", "each"), "each": a_map(task("slurm_steps.breaks_for"))}, "first")
    failed = run("resume-map-1")
    assert failed.status == defaults.FAIL
    assert outcome(failed)["each.2.work"] == defaults.FAIL and outcome(failed)["each.1.work"] == defaults.SUCCESS
    (project / "broken.flag").unlink()
    resumed = run("resume-map-2", use_cached="resume-map-1")
    assert resumed.status == defaults.SUCCESS, outcome(resumed)
    steps = resumed.steps["each"].branches
    assert resumed.steps["first"].mock is True
    assert steps["each.1"].steps["each.1.work"].mock is True
    assert steps["each.2"].steps["each.2.work"].mock is False


def test_stores_jobs_cannot_share_are_refused(cluster: LocalCluster, project: Path) -> None:
    setup(project, {"one": task("slurm_steps.noop")}, "one")
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["run_log_store"] = {"type": "buffered"}
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigurationError, match="keeps its state in"):
        run("buffered-1")


def test_unknown_override_is_refused(cluster: LocalCluster, project: Path) -> None:
    setup(
        project, {"one": task("slurm_steps.noop", overrides={"slurm": "gpu"})}, "one", overrides={"big": {"mem": "1G"}}
    )
    with pytest.raises(ConfigurationError, match=r"'gpu' is not in executor\.config\.overrides"):
        run("override-1")


def test_a_step_past_its_time_limit_fails_with_timeout(cluster: LocalCluster, project: Path) -> None:
    """SLURM checks time limits about once a minute: this test takes one to two minutes."""
    setup(
        project,
        {"long": task("slurm_steps.sleeps", overrides={"slurm": "short"})},
        "long",
        overrides={"short": {"time": "00:00:30"}},
    )
    run_log = run("timeout-1")
    assert run_log.status == defaults.FAIL
    message = run_log.steps["long"].message
    assert "ran past its time limit: TIMEOUT" in message and "DUE TO TIME LIMIT" in message


MARKING_TRACKER = """
from typing import ClassVar, Dict

from magnus.tracker import BaseExperimentTracker


class MarkingTracker(BaseExperimentTracker):
    service_name: ClassVar[str] = "marking"

    def launch_environment(self, unit: str) -> Dict[str, str]:
        return {"MAGNUS_TEST_CONTEXT": f"context of {unit}"}
"""

SEES_CONTEXT = """
import os
from pathlib import Path


def sees(item: int = -1) -> None:
    Path(f"seen-{item}.txt").write_text(os.environ.get("MAGNUS_TEST_CONTEXT", "none"))
"""


def test_what_the_tracker_gives_a_launch_reaches_each_job_and_array_task(cluster: LocalCluster, project: Path) -> None:
    """A tracker's launch environment (a trace context) is exported in the job, per array task too."""
    from magnus.testing.plugins import installed_plugins

    setup(project, {"one": task("context_steps.sees", "each"), "each": a_map(task("context_steps.sees"))}, "one")
    (project / "context_steps.py").write_text(textwrap.dedent(SEES_CONTEXT))
    (project / "marking_tracker.py").write_text(textwrap.dedent(MARKING_TRACKER))
    config = yaml.safe_load((project / "config.yaml").read_text())
    (project / "config.yaml").write_text(yaml.safe_dump({**config, "experiment_tracker": {"type": "marking"}}))
    with installed_plugins(project, {"experiment_tracker": {"marking": "marking_tracker:MarkingTracker"}}):
        run_log = run("context-1")
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    assert (project / "seen--1.txt").read_text() == "context of one"
    # the array tasks walk the branches: each got its own branch's
    assert [(project / f"seen-{item}.txt").read_text() for item in range(3)] == [
        f"context of each.{item}" for item in range(3)
    ]

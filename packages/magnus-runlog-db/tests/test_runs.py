"""Whole runs through the ``magnus`` command: many writers, a killed run resumed, a server that goes away."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import PASSWORD, PostgresServer, remove_server, start_server, store_factory, wait_for
from runs_helpers import environment, magnus, project, run

from magnus import defaults


def _map_items() -> list[object]:
    # Values sharing prefixes and holding dots: 1, 1.5, 10, 10.5, ...
    return [number / 2 if number % 2 else number // 2 for number in range(120)]


@pytest.mark.parametrize("workers", [1, 8])
def test_a_map_written_by_many_processes_loses_nothing(backend_url: str, tmp_path: Path, workers: int) -> None:
    items = _map_items()
    folder = project(tmp_path, backend_url, max_workers=workers, items=items)
    done = run(folder, "-f", "map.yaml", "-p", "parameters.yaml", "--run-id", "map-run")
    assert done.returncode == 0, done.stderr
    run_log = store_factory(backend_url)().get_run_log_by_id("map-run")
    assert run_log.status == defaults.SUCCESS
    branches = run_log.steps["map"].branches
    assert sorted(branches) == sorted(f"map.{item}" for item in items)
    for name, branch in branches.items():
        assert branch.status == defaults.SUCCESS, name
        assert list(branch.steps) == [f"{name}.work", f"{name}.success"]
        assert branch.steps[f"{name}.work"].status == defaults.SUCCESS


def test_a_killed_run_reads_back_and_resumes_with_use_cached(backend_url: str, tmp_path: Path) -> None:
    folder = project(tmp_path, backend_url)
    env = {**environment(folder), "SLOW_WAITS": "1"}
    command = magnus(folder, "-f", "line.yaml", "--run-id", "killed")
    process = subprocess.Popen(command, cwd=folder, env=env, start_new_session=True)
    try:
        wait_for(lambda: (folder / "slow.started").exists())
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    killed = store_factory(backend_url)().get_run_log_by_id("killed")
    assert killed.status == defaults.PROCESSING
    assert killed.steps["first"].status == defaults.SUCCESS
    assert killed.steps["slow"].status == defaults.PROCESSING

    resumed = run(folder, "-f", "line.yaml", "--run-id", "resumed", "--use-cached", "killed")
    assert resumed.returncode == 0, resumed.stderr
    run_log = store_factory(backend_url)().get_run_log_by_id("resumed")
    assert (run_log.status, run_log.use_cached, run_log.original_run_id) == (defaults.SUCCESS, True, "killed")
    assert "--use-cached" in run_log.steps["first"].message
    assert (folder / "first.count").read_text() == "x"  # ran once, in the killed run
    assert [run_log.steps[name].status for name in ("first", "slow", "last")] == [defaults.SUCCESS] * 3


@pytest.mark.postgres
def test_a_server_stopped_mid_run_is_a_clean_failure(postgres: PostgresServer, tmp_path: Path) -> None:
    """Its own server (the session's keeps serving other tests), stopped while a step runs."""
    own = start_server(postgres.bin)
    try:
        own.createdb("magnus")
        folder = project(tmp_path, own.url("magnus"))
        env = {**environment(folder), "SLOW_WAITS": "1"}
        command = magnus(folder, "-f", "line.yaml", "--run-id", "orphan", "--quiet")  # errors only
        process = subprocess.Popen(command, cwd=folder, env=env, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (folder / "slow.started").exists())
        own.stop()
        (folder / "slow.go").touch()
        _, stderr = process.communicate(timeout=60)
    finally:
        remove_server(own)
    assert process.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: run log database at 127.0.0.1:{own.port}"), stderr
    assert "Traceback" not in stderr and PASSWORD not in stderr

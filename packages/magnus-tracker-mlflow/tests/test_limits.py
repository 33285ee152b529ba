"""A tracking URI that is not one is refused when the config is read; an unreachable server fails fast.

Before: ``server_url: not a url`` ended in ``Error: internal error: MlflowException`` and a closed
port took about four minutes of MLflow's retries before failing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Tuple

import pytest
import yaml

from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing.pipelines import closed_port, write_pipeline
from magnus_tracker_mlflow.tracker import (
    MLflowExperimentTracker,
    TrackerUnavailableError,
    bounded_calls,
    bounded_environment,
)

STUB = {"a": {"type": "stub", "next": "success"}}


def run_magnus(project: Path, tracker_config: dict) -> subprocess.CompletedProcess[str]:
    write_pipeline(project, STUB, "a")
    config = {"experiment_tracker": {"type": "mlflow", "config": tracker_config}}
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_HTTP_REQUEST")}
    return subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-c", "config.yaml", "--quiet"],  # errors only
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=environment,
    )


@pytest.mark.parametrize("uri", ["not a url", "mlruns", "ftp://host/x", "http://", "localhost:5000"])
def test_a_server_url_that_is_not_a_tracking_uri_is_refused_in_one_line(tmp_path: Path, uri: str) -> None:
    if uri == "not a url":  # one through the CLI, as a user meets it
        result = run_magnus(tmp_path, {"server_url": uri})
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"Error: config.yaml: experiment_tracker.config.server_url: {uri!r} is not an MLflow tracking URI "
            "(expected http(s)://host[:port], file:/folder, sqlite:///mlflow.db, postgresql://..., databricks)"
        ]
        return
    from magnus.config import create_service

    with pytest.raises(ConfigurationError, match=r"experiment_tracker\.config\.server_url"):
        create_service("experiment_tracker", {"type": "mlflow", "config": {"server_url": uri}}, "config.yaml")


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/",
        "file:///tmp/mlruns",
        "sqlite:///mlflow.db",
        "postgresql+psycopg2://user@db/mlflow",
        "databricks",
        "databricks://profile",
    ],
)
def test_tracking_uris_are_accepted(uri: str) -> None:
    assert MLflowExperimentTracker(server_url=uri).server_url == uri


def test_an_unreachable_server_fails_within_the_timeout_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = run_magnus(tmp_path, {"server_url": url, "timeout": 3})
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [f"Error: experiment_tracker: MLflow at {url}: connection refused"]
    assert elapsed < 60  # MLflow's own retries took ~4 minutes; the start-up of mlflow is most of this


def test_a_file_store_this_mlflow_keeps_read_only_is_said_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow 3 refuses ``file:`` stores unless told: one line saying so and how, no internal error."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = run_magnus(tmp_path, {"server_url": "file:./mlruns"})
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: experiment_tracker: MLflow at file:./mlruns: this MLflow keeps its file store read-only: use a "
        "database (server_url: sqlite:///mlflow.db; `mlflow migrate-filestore` moves existing runs), or set "
        "MLFLOW_ALLOW_FILE_STORE=true"
    ]


def test_the_http_settings_hold_only_for_the_calls_of_the_tracker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # set by the user: wins
    settings = bounded_environment(10)
    assert settings["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "2" and settings["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    with pytest.raises(TrackerUnavailableError, match="MLflow at http://h: boom"):
        with bounded_calls("http://h", 10):
            assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "2"
            assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
            raise RuntimeError("boom")
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_a_call_of_the_client_fails_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in bounded_environment(1):
        monkeypatch.delenv(key, raising=False)
    url = f"http://127.0.0.1:{closed_port()}"
    tracker = MLflowExperimentTracker(server_url=url, timeout=1)
    started = time.monotonic()
    with pytest.raises(TrackerUnavailableError, match="connection refused"):
        tracker.start_run("run-1")
    assert time.monotonic() - started < 15


def test_a_tracker_failing_at_start_leaves_a_summary_naming_the_run_log(tmp_path: Path) -> None:
    """The run log exists when the tracker fails: the summary says where (it said ``run log:`` and nothing)."""
    url = f"http://127.0.0.1:{closed_port()}"
    write_pipeline(tmp_path, STUB, "a")
    config = {
        "run_log_store": {"type": "file-system"},
        "experiment_tracker": {"type": "mlflow", "config": {"server_url": url, "timeout": 3}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-c", "config.yaml", "--run-id", "untracked"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 1
    assert f"Error: experiment_tracker: MLflow at {url}: connection refused" in result.stderr
    assert "run untracked FAIL in" in result.stderr
    assert "run log: .run_log_store/untracked.json" in result.stderr
    assert "resume with: magnus execute -f pipeline.yaml -c config.yaml --use-cached untracked" in result.stderr


# ---- credentials in the tracking URI (issue 31) --------------------------------------------------------
PASSWORD = "Tracker-Pass-1"


@pytest.mark.service
def test_a_password_in_the_tracking_uri_stays_out_of_the_run_log_and_the_console(
    tmp_path: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = mlflow_server.replace("http://", f"http://user:{PASSWORD}@")
    write_pipeline(tmp_path, STUB, "a")
    tracker = {"type": "mlflow", "config": {"server_url": url}}
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"run_log_store": {"type": "file-system"}, "experiment_tracker": tracker})
    )
    run_log = execute("pipeline.yaml", "config.yaml", run_id="with-password")
    assert run_log is not None and run_log.status == "SUCCESS"
    printed = capfd.readouterr()
    recorded = (tmp_path / ".run_log_store" / "with-password.json").read_text()
    assert PASSWORD not in recorded + printed.out + printed.err
    shown = json.loads(recorded)["run_config"]["experiment_tracker"]["server_url"]
    assert shown == mlflow_server.replace("http://", "http://user:***@")


def _closing_server() -> Tuple[int, Callable[[], None]]:
    """A loopback server that accepts each connection and closes it unanswered: its port and its stop."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stopped = threading.Event()

    def serve() -> None:
        while not stopped.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(5)
        listener.close()

    return int(listener.getsockname()[1]), stop


def test_a_failing_server_is_named_without_the_credentials_of_its_uri(tmp_path: Path) -> None:
    """MLflow's own message quotes the whole URL (``API request to http://user:pw@...``)."""
    port, stop = _closing_server()
    try:
        url = f"http://user:{PASSWORD}@127.0.0.1:{port}/mlflow?token=Query-Token-2"
        result = run_magnus(tmp_path, {"server_url": url, "timeout": 3})
    finally:
        stop()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Error: experiment_tracker: MLflow at http://user:***@127.0.0.1:{port}/mlflow?token=***: "
    ), lines
    assert PASSWORD not in result.stderr and "Query-Token-2" not in result.stderr


def test_an_at_sign_in_the_password_is_refused_when_the_config_is_read_without_showing_it(tmp_path: Path) -> None:
    result = run_magnus(tmp_path, {"server_url": "http://user:p@ss-Tail-42@mlflow.example:5000"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: config.yaml: experiment_tracker.config.server_url: unparseable URL (more than one '@' before the "
        "host: write an '@' in the user or password as %40), not shown: it may hold a password"
    ]

"""A catalog that cannot be used fails the run in one line naming it, what failed and the fix.

Missing bucket, an endpoint nobody answers on, no credentials, an FTP server refusing the
connection: what boto3, s3fs and fsspec raise reaches the user as ``Error: catalog 'fsspec' at
<location>: <what failed>: <the fix>``, exit 1, never "internal error" (kept for magnus's bugs).
Run as a user runs magnus, against the real S3 API of moto's server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
import yaml

from magnus.service_failures import unusable
from magnus.testing.pipelines import closed_port, error_line, task, write_pipeline
from magnus.testing.s3 import S3Server


def _run(tmp_path: Path, location: str, environment: Dict[str, str]) -> "subprocess.CompletedProcess[str]":
    write_pipeline(tmp_path, {"a": task("echo x > out.txt", command_type="shell")}, "a")
    config = {"run_log_store": {"type": "file-system"}, "catalog": {"type": "fsspec", "config": {"location": location}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MAGNUS_"))}
    return subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**inherited, "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1", **environment},
    )


def failed(result: "subprocess.CompletedProcess[str]") -> str:
    """The one line of a run that failed (exit 1) on its catalog: no traceback, no internal error."""
    assert "Traceback" not in result.stderr, result.stderr
    return error_line(result, 1)


def test_a_missing_bucket(tmp_path: Path, s3_server: S3Server) -> None:
    result = _run(tmp_path, "s3://no-such-bucket/catalog", s3_server.environment())
    assert failed(result) == (
        "Error: catalog 'fsspec' at s3://no-such-bucket/catalog: the bucket does not exist: "
        "create it, or change the location"
    )
    assert not (tmp_path / "out.txt").exists(), "refused before any step ran"


def test_an_endpoint_nobody_answers_on(tmp_path: Path, s3_server: S3Server) -> None:
    nobody = f"http://127.0.0.1:{closed_port()}"
    environment = {**s3_server.environment(), "AWS_ENDPOINT_URL": nobody, "AWS_ENDPOINT_URL_S3": nobody}
    line = failed(_run(tmp_path, "s3://bucket/catalog", environment))
    assert line.startswith("Error: catalog 'fsspec' at s3://bucket/catalog: it cannot be reached (Could not connect")
    assert line.endswith("check the address, and that the service is running")


def test_no_credentials(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    environment = {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    environment["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    line = failed(_run(tmp_path, f"s3://{s3_bucket}/catalog", environment))
    assert line.startswith(f"Error: catalog 'fsspec' at s3://{s3_bucket}/catalog: no credentials were found")
    assert "AWS_ACCESS_KEY_ID" in line


def test_an_ftp_server_refusing_the_connection(tmp_path: Path) -> None:
    location = f"ftp://127.0.0.1:{closed_port()}/catalog"
    line = failed(_run(tmp_path, location, {}))
    assert line == (
        f"Error: catalog 'fsspec' at {location}: it cannot be reached ([Errno 111] Connection refused): "
        "check the address, and that the service is running"
    )


@pytest.mark.parametrize("exception", [KeyError("bucket"), ValueError("Connection refused, said a bug")])
def test_other_exceptions_are_not_taken_for_a_service_failure(exception: Exception) -> None:
    """Only what reaching a service raises is said as such: a bug stays a bug."""
    assert unusable(exception) is None


def test_a_cause_under_a_library_wrapper_is_found() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as cause:
            raise RuntimeError("the library failed") from cause
    except RuntimeError as wrapper:
        assert "cannot be reached" in str(unusable(wrapper))

"""A step's execution log reaches the catalog whole, written as the step prints: memory stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from magnus.testing.pipelines import magnus_peak_memory, printing_pipeline

PRINTED = 128 * 1024 * 1024  # bytes, one line with no newline
BOUND = 100 * 1024 * 1024  # a process of magnus's own takes 40 to 60 MiB here


@pytest.mark.slow
@pytest.mark.parametrize("command_type", ["shell", "python"])
def test_128_mib_printed_on_one_line_is_kept_whole_within_100_mib(tmp_path: Path, command_type: str) -> None:
    pipeline = printing_pipeline(tmp_path, command_type, PRINTED)
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: file-system\n")
    measured = magnus_peak_memory("execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "loud", cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    log = tmp_path / ".catalog" / "loud" / "prints.execution.log"
    assert log.stat().st_size == PRINTED, "the whole output is in the execution log"
    assert measured.peak_bytes < BOUND, f"peak {measured.peak_bytes >> 20} MiB for {PRINTED >> 20} MiB printed"


def test_a_log_that_cannot_be_put_leaves_the_step_as_it_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Keeping the execution log is best effort: the step's record and its retries do not depend on it."""
    from magnus.entrypoints import execute
    from magnus.testing.pipelines import task, write_pipeline
    from magnus_catalog_fs.catalog import FileSystemCatalog

    def put(self: FileSystemCatalog, name: str, source: object, run_id: str) -> None:
        raise ConnectionResetError("the disk went away")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(FileSystemCatalog, "put_file", put)  # a large log
    monkeypatch.setattr(FileSystemCatalog, "put_data", put)  # a small one
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: file-system\n")
    pipeline = write_pipeline(tmp_path, {"says": task("echo hi", command_type="shell")}, "says")
    run_log = execute(pipeline, "config.yaml", run_id="unkept")
    assert run_log is not None and run_log.status == "SUCCESS"
    assert [attempt.status for attempt in run_log.steps["says"].attempts] == ["SUCCESS"]
    assert "says.execution.log: the execution log was not kept: " in caplog.text
    assert "the disk went away" in caplog.text


def test_carriage_returns_read_as_newlines_as_in_magnus_0_5_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from magnus.entrypoints import execute
    from magnus.testing.pipelines import task, write_pipeline

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: file-system\n")
    command = "printf 'a\\r\\nb\\rc\\n'"
    pipeline = write_pipeline(tmp_path, {"says": task(command, command_type="shell")}, "says")
    execute(pipeline, "config.yaml", run_id="crlf")
    assert (tmp_path / ".catalog" / "crlf" / "says.execution.log").read_text() == "a\nb\nc\n"


@pytest.mark.parametrize("written", ["short", "past the limit of ten characters"])
def test_a_log_is_put_whole_from_memory_or_from_its_file(tmp_path: Path, written: str) -> None:
    """Small logs stay in memory; past the limit the rest goes to a file, removed once the log closes."""
    from magnus.runtime.execution_log import ExecutionLog
    from magnus_catalog_fs.catalog import FileSystemCatalog

    catalog = FileSystemCatalog(catalog_location=str(tmp_path / "catalog"))
    log = ExecutionLog(in_memory=10)
    for piece in (written[:3], written[3:]):
        log.write(piece)
    spilled = log.path
    entries = log.put(catalog, "step.execution.log", "run")
    log.close()
    assert (tmp_path / "catalog" / "run" / "step.execution.log").read_text() == written
    assert [entry.name for entry in entries] == ["step.execution.log"]
    assert (spilled is not None) == (len(written) > 10)
    assert spilled is None or not spilled.parent.exists(), "the file and its folder are removed with the log"

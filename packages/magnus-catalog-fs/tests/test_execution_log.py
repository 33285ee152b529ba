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

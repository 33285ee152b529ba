"""What a step prints is never held whole in memory: it streams to the console and its execution log.

A step's output used to be kept in memory until the step ended (a buffer, then its value, then
its bytes: three copies), and a shell command's output was read a line at a time (one line of a
gigabyte, held whole). Measured on a ``magnus execute`` process, as a user runs it: the peak memory
of its processes. The execution log kept in a catalog is checked by the file-system catalog's tests
(``packages/magnus-catalog-fs/tests/test_execution_log.py``): core alone keeps no files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from magnus.testing.pipelines import magnus_peak_memory, printing_pipeline

PRINTED = 128 * 1024 * 1024  # bytes, one line with no newline
# A process of magnus's own (interpreter, pydantic, yaml, the run) takes 40 to 60 MiB here.
BOUND = 100 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("command_type", ["shell", "python"])
def test_a_step_printing_128_mib_on_one_line_stays_within_100_mib(tmp_path: Path, command_type: str) -> None:
    pipeline = printing_pipeline(tmp_path, command_type, PRINTED)
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: do-nothing\n")
    measured = magnus_peak_memory("execute", "-f", pipeline, "-c", "config.yaml", cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    assert measured.peak_bytes < BOUND, f"peak {measured.peak_bytes >> 20} MiB for {PRINTED >> 20} MiB printed"

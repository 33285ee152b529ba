"""What a step prints streams to its execution log: memory stays bounded whatever it prints.

A step's output used to be kept in memory until the step ended (a buffer, then its value, then
its bytes: three copies), and a shell command's output was read a line at a time (one line of a
gigabyte, held whole). Both are measured on a ``magnus execute`` process, as a user runs it: the
peak memory of the processes it ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from magnus.testing.pipelines import magnus_command, task, write_pipeline

PRINTED = 128 * 1024 * 1024  # bytes, one line with no newline
# A process of magnus's own (interpreter, pydantic, yaml, the run) takes 40 to 60 MiB here.
BOUND = 100 * 1024 * 1024

# Runs the command in a process of its own and prints the peak resident size of its processes:
# RUSAGE_CHILDREN of a process whose only children are those of the command.
PEAK = """
import json, resource, subprocess, sys
ended = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"code": ended.returncode, "peak": peak, "stderr": ended.stderr[-2000:]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("command_type", ["shell", "python"])
def test_a_step_printing_128_mib_on_one_line_stays_within_100_mib(tmp_path: Path, command_type: str) -> None:
    if command_type == "shell":
        command = f"head -c {PRINTED} /dev/zero | tr '\\0' x"
    else:
        (tmp_path / "steps.py").write_text(
            textwrap.dedent(
                f"""
                import sys

                def prints() -> None:
                    block = "x" * (1 << 20)
                    for _ in range({PRINTED >> 20}):
                        sys.stdout.write(block)
                """
            )
        )
        command = "steps.prints"
    pipeline = write_pipeline(tmp_path, {"prints": task(command, command_type=command_type)}, "prints")
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    run = [*magnus_command(), "execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "loud"]
    measured = subprocess.run(
        [sys.executable, "-c", PEAK, *run], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=300
    )
    result = json.loads(measured.stdout)
    assert result["code"] == 0, result["stderr"]
    log = tmp_path / ".catalog" / "loud" / "prints.execution.log"
    assert log.stat().st_size == PRINTED, "the whole output is in the execution log"
    assert result["peak"] < BOUND, f"peak {result['peak'] >> 20} MiB for {PRINTED >> 20} MiB printed"

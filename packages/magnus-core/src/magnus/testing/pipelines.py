"""Pipelines for tests, written as YAML holds them, and ``magnus`` run on them as a user would.

The same few shapes recur in every package's tests (a task, a map over a one-step branch, a dag
ending in ``success`` and ``fail``), and so does running ``magnus`` in a process of its own and
reading the run log it left. They live here once, for core's tests and every plugin's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

import yaml

TERMINALS: Dict[str, Dict[str, Any]] = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def task(command: str, next_step: str = "success", **fields: Any) -> Dict[str, Any]:
    """A task step (a python function by default; ``command_type="shell"`` ...)."""
    return {"type": "task", "command": command, "next": next_step, **fields}


def dag(start_at: str, steps: Dict[str, Any]) -> Dict[str, Any]:
    """A dag of ``steps`` with its ``success`` and ``fail`` nodes."""
    return {"start_at": start_at, "steps": {**steps, **TERMINALS}}


def map_of(
    command: str, next_step: str = "success", iterate_on: str = "items", iterate_as: str = "item", **task_fields: Any
) -> Dict[str, Any]:
    """A map over ``iterate_on`` (each value as ``iterate_as``) whose branch is the one task ``work``
    running ``command`` (with ``task_fields``: ``command_type="shell"`` ...)."""
    return {
        "type": "map",
        "iterate_on": iterate_on,
        "iterate_as": iterate_as,
        "next": next_step,
        "branch": dag("work", {"work": task(command, **task_fields)}),
    }


def write_pipeline(folder: Path, steps: Dict[str, Any], start_at: str, name: str = "pipeline.yaml") -> str:
    """Write the pipeline of ``steps`` (terminal nodes added) to ``folder/name``; its name."""
    (folder / name).write_text(yaml.safe_dump({"dag": dag(start_at, steps)}))
    return name


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): a service that does not answer."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def magnus_command() -> List[str]:
    """``magnus`` as this interpreter runs it."""
    return [sys.executable, "-m", "magnus"]


def run_magnus(
    *args: str, cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 120, isolated: bool = False
) -> "subprocess.CompletedProcess[str]":
    """``magnus ARGS`` in a process of its own, as a user runs it; its exit status and output.

    ``isolated``: none of this process's ``MAGNUS_`` variables reach it (a test's run id, config...).
    """
    inherited = {key: value for key, value in os.environ.items() if not (isolated and key.startswith("MAGNUS_"))}
    return subprocess.run(
        [*magnus_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**inherited, **(env or {})},
    )


def printing_pipeline(project: Path, command_type: str, printed: int) -> str:
    """A pipeline of one step, ``prints``, printing ``printed`` bytes (a whole number of MiB) on one line,
    as a shell command or a python function (in ``steps.py``); its file name."""
    if command_type == "shell":
        command = f"head -c {printed} /dev/zero | tr '\\0' x"
    else:
        (project / "steps.py").write_text(
            "import sys\n\n\ndef prints() -> None:\n"
            f"    for _ in range({printed >> 20}):\n"
            "        sys.stdout.write('x' * (1 << 20))\n"
        )
        command = "steps.prints"
    return write_pipeline(project, {"prints": task(command, command_type=command_type)}, "prints")


# Run in a python process of its own, whose only children are the command's: RUSAGE_CHILDREN then
# measures the command's processes alone (the largest of them).
_PEAK = """
import json, resource, subprocess, sys
ended = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"code": ended.returncode, "peak": peak, "stderr": ended.stderr[-2000:]}))
"""


class Measured(NamedTuple):
    """How a ``magnus`` process ended and the most memory one of its processes held."""

    returncode: int
    peak_bytes: int
    stderr: str


def magnus_peak_memory(*args: str, cwd: Path, timeout: float = 300) -> Measured:
    """``magnus ARGS`` run as :func:`run_magnus` does, its output discarded; its peak resident size."""
    measured = subprocess.run(
        [sys.executable, "-c", _PEAK, *magnus_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    result = json.loads(measured.stdout)
    return Measured(int(result["code"]), int(result["peak"]), str(result["stderr"]))


def error_line(result: "subprocess.CompletedProcess[str]", exit_code: int, *fragments: str) -> str:
    """The one ``Error:`` line of a command that exited with ``exit_code``, checked to hold each of
    ``fragments``, with no internal error; a refusal (exit 2) shows no traceback either (a failed
    run may: a failing task's traceback is part of what its step printed)."""
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "internal error" not in result.stderr, result.stderr
    assert exit_code != 2 or "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def start_magnus(*args: str, cwd: Path, env: Optional[Dict[str, str]] = None) -> "subprocess.Popen[str]":
    """``magnus ARGS`` started in a process of its own, not waited for (to signal it, say)."""
    return subprocess.Popen(
        [*magnus_command(), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def read_run_log(folder: Path, run_id: str, log_folder: str = ".run_log_store") -> Dict[str, Any]:
    """The JSON a file-system run log store keeps for ``run_id`` under ``folder``."""
    document: Dict[str, Any] = json.loads((folder / log_folder / f"{run_id}.json").read_text())
    return document

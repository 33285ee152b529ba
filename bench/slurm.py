"""magnus on SLURM versus a hand-written sbatch script doing the same jobs, on a private one-node cluster.

Two workloads of no-op python steps:

- a map of 200 items: magnus submits one job array; the script `sbatch --array=0-199 --wait`;
- a chain of 20 steps: magnus submits each step when the one before succeeded; the script
  submits all 20 at once, chained with `--dependency=afterok`, and waits on the last.

Both sides run the same python function in every job (the script with `python -c`, magnus with
`magnus execute_single_node` / `execute_branch`, which also records the run log). Reported:
wall time, the ratio magnus / script, `sbatch` calls and status queries (`squeue`, `sacct`,
`scontrol`), counted by logging stand-ins put first on the PATH. `sbatch --wait` polls inside
sbatch, so the script's queries are not counted.

    python bench/slurm.py [--items 200] [--chain 20]

Needs root on Debian (the cluster is apt-installed when missing) and magnus-executor-slurm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from magnus_executor_slurm.cluster import LocalCluster

NOOP = "def noop() -> None:\n    pass\n\n\ndef item(item: int) -> None:\n    pass\n"
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}
COUNTED = ("sbatch", "squeue", "sacct", "scontrol")


def shims(folder: Path) -> Path:
    """Logging stand-ins for the SLURM commands; the log they append to."""
    folder.mkdir()
    log = folder / "calls.log"
    for command in COUNTED:
        real = shutil.which(command)
        (folder / command).write_text(f'#!/bin/sh\necho "{command}" >> {log}\nexec {real} "$@"\n')
        (folder / command).chmod(0o755)
    return log


def calls(log: Path) -> Dict[str, int]:
    lines = log.read_text().split() if log.exists() else []
    return {command: lines.count(command) for command in COUNTED}


def timed(command: List[str], project: Path, environment: Dict[str, str], log: Path) -> Tuple[float, Dict[str, int]]:
    log.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started, calls(log)


def magnus_map(project: Path, items: int) -> List[str]:
    branch = {
        "start_at": "work",
        "steps": {"work": {"type": "task", "command": "bench_noop.item", "next": "success"}, **TERMINALS},
    }
    steps = {"each": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}}
    (project / "map.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "each", "steps": {**steps, **TERMINALS}}}))
    (project / "items.yaml").write_text(yaml.safe_dump({"items": list(range(items))}))
    return [sys.executable, "-m", "magnus", "execute", "-f", "map.yaml", "-c", "config.yaml", "-p", "items.yaml"]


def magnus_chain(project: Path, length: int) -> List[str]:
    steps = {
        f"s{index}": {
            "type": "task",
            "command": "bench_noop.noop",
            "next": f"s{index + 1}" if index + 1 < length else "success",
        }
        for index in range(length)
    }
    (project / "chain.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "s0", "steps": {**steps, **TERMINALS}}}))
    return [sys.executable, "-m", "magnus", "execute", "-f", "chain.yaml", "-c", "config.yaml"]


def script_map(project: Path, items: int) -> List[str]:
    job = f"{sys.executable} -c 'import sys, bench_noop; bench_noop.item(int(sys.argv[1]))' \\$SLURM_ARRAY_TASK_ID"
    (project / "map.sh").write_text(
        f'#!/bin/bash\nsbatch --parsable --wait --array=0-{items - 1} -o /dev/null --wrap "{job}"\n'
    )
    return ["bash", "map.sh"]


def script_chain(project: Path, length: int) -> List[str]:
    job = f"{sys.executable} -c 'import bench_noop; bench_noop.noop()'"
    after = "--dependency=afterok:$previous --kill-on-invalid-dep=yes"
    lines = ["#!/bin/bash", "set -e", f'previous=$(sbatch --parsable -o /dev/null --wrap "{job}")']
    for _ in range(length - 2):
        lines.append(f'previous=$(sbatch --parsable -o /dev/null {after} --wrap "{job}")')
    lines.append(f'sbatch --parsable --wait -o /dev/null {after} --wrap "{job}"')
    (project / "chain.sh").write_text("\n".join(lines) + "\n")
    return ["bash", "chain.sh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--chain", type=int, default=20)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="magnus-bench-slurm-") as scratch:
        root = Path(scratch)
        project = root / "project"
        project.mkdir()
        (project / "bench_noop.py").write_text(NOOP)
        config = {
            "executor": {"type": "slurm", "config": {}},
            "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
        }
        (project / "config.yaml").write_text(yaml.safe_dump(config))
        log = shims(root / "shims")
        with LocalCluster(root / "cluster") as cluster:
            environment = {
                **os.environ,
                **cluster.environment,
                "PATH": f"{root / 'shims'}{os.pathsep}{os.environ['PATH']}",
            }
            rows = []
            for name, magnus_command, script_command in (
                (
                    f"map of {arguments.items}",
                    magnus_map(project, arguments.items),
                    script_map(project, arguments.items),
                ),
                (
                    f"chain of {arguments.chain}",
                    magnus_chain(project, arguments.chain),
                    script_chain(project, arguments.chain),
                ),
            ):
                script_time, script_calls = timed(script_command, project, environment, log)
                magnus_time, magnus_calls = timed(magnus_command, project, environment, log)
                queries = sum(magnus_calls[command] for command in ("squeue", "sacct", "scontrol"))
                rows.append(
                    f"| {name} | {script_time:.1f} s | {magnus_time:.1f} s | {magnus_time / script_time:.2f}x "
                    f"| {script_calls['sbatch']} | {magnus_calls['sbatch']} | {queries} |"
                )
        print("| workload | hand-written script | magnus | ratio | script sbatch | magnus sbatch | status queries |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows))


if __name__ == "__main__":
    main()

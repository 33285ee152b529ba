"""magnus on Ray versus bare ``ray.remote`` no-op tasks doing the same work, on a private two-node cluster.

Two workloads of no-op python steps:

- a chain of steps, each started when the one before ended: magnus walks ``s0 -> s1 -> ...``;
  the bare script calls ``ray.get(noop.remote())`` in turn;
- a map over items on both nodes (each task 0.5 CPU: two at once per node): magnus maps a
  no-op step; the bare script submits one task per item and gets them all.

Both sides are a whole process (``magnus execute`` and ``python script.py``), a new Ray job each;
magnus's steps run in Ray workers from their launch requests and record a chunked-fs run log.
Reported: the whole process, and the steady cost of a step: from the end of the first step (or
task) to the end of the last, per step, when the workers have started (magnus: the ends its
run log records; the bare script: its own clock, after a first task). magnus's own overhead is its
cost per step less the bare task's.

    python bench/ray.py [--chain 100] [--items 1000] [--repeat 1]

Needs magnus-executor-ray and magnus-runlog-chunked installed (``ray[default]`` for ``ray start``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from magnus_executor_ray.cluster import LocalCluster

NOOP = "def noop() -> None:\n    pass\n\n\ndef item(item: int) -> None:\n    pass\n"
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}
TASK_CPUS = 0.5

# Each prints the seconds from the end of its first task to the end of its last.
BARE_CHAIN = """
import sys, time, ray, bench_noop
ray.init(address=sys.argv[1], logging_level="WARNING")
noop = ray.remote(max_retries=0)(bench_noop.noop).options(num_cpus={cpus})
ray.get(noop.remote())
first = time.perf_counter()
for _ in range(int(sys.argv[2]) - 1):
    ray.get(noop.remote())
print(time.perf_counter() - first)
"""
BARE_MAP = """
import sys, time, ray, bench_noop
ray.init(address=sys.argv[1], logging_level="WARNING")
item = ray.remote(max_retries=0)(bench_noop.item).options(num_cpus={cpus})
pending = [item.remote(number) for number in range(int(sys.argv[2]))]
ready, pending = ray.wait(pending, num_returns=1)
first = time.perf_counter()
ray.get(pending)
print(time.perf_counter() - first)
"""


def timed(command: List[str], project: Path, repeat: int) -> Tuple[float, str]:
    """The fastest of ``repeat`` runs of ``command`` in ``project`` (whole process, seconds); what it printed."""
    best, printed = float("inf"), ""
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=project, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-3000:]}")
        if elapsed < best:
            best, printed = elapsed, done.stdout
    return best, printed


def steady(project: Path, run_id: str) -> float:
    """Seconds from the end of the run's first step to the end of its last (steps of maps included)."""
    from magnus_runlog_chunked.store import ChunkedFileSystemRunLogStore

    run_log = ChunkedFileSystemRunLogStore(log_folder=str(project / ".run_log_store")).get_run_log_by_id(run_id)
    ends: List[datetime] = []

    def visit(steps: Dict[str, Any]) -> None:
        for step in steps.values():
            if step.step_type == "task":
                ends.append(datetime.fromisoformat(step.attempts[-1].end_time))
            for branch in step.branches.values():
                visit(branch.steps)

    visit(run_log.steps)
    return (max(ends) - min(ends)).total_seconds()


def magnus_chain(project: Path, length: int) -> List[str]:
    steps = {
        f"s{index}": {
            "type": "task",
            "command": "bench_noop.noop",
            "next": f"s{index + 1}" if index + 1 < length else "success",
        }
        for index in range(length)
    }
    name = f"chain-{length}.yaml"
    (project / name).write_text(yaml.safe_dump({"dag": {"start_at": "s0", "steps": {**steps, **TERMINALS}}}))
    return [sys.executable, "-m", "magnus", "execute", "-f", name, "-c", "config.yaml", "--run-id", f"chain-{length}"]


def magnus_map(project: Path, items: int) -> List[str]:
    branch = {
        "start_at": "work",
        "steps": {"work": {"type": "task", "command": "bench_noop.item", "next": "success"}, **TERMINALS},
    }
    steps = {"each": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}}
    (project / "map.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "each", "steps": {**steps, **TERMINALS}}}))
    (project / f"items-{items}.yaml").write_text(yaml.safe_dump({"items": list(range(items))}))
    options = ["-c", "config.yaml", "-p", f"items-{items}.yaml", "--run-id", f"map-{items}"]
    return [sys.executable, "-m", "magnus", "execute", "-f", "map.yaml", *options]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each bare script (the fastest is kept)")
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="magnus-bench-ray-") as scratch:
        root = Path(scratch)
        project = root / "project"
        project.mkdir()
        (project / "bench_noop.py").write_text(NOOP)
        (project / "bare_chain.py").write_text(BARE_CHAIN.format(cpus=TASK_CPUS))
        (project / "bare_map.py").write_text(BARE_MAP.format(cpus=TASK_CPUS))
        cluster = LocalCluster(root / "cluster")
        os.environ.update(cluster.environment)  # for the scripts and magnus processes, which inherit it
        with cluster:
            cluster.add_node("node_b", cpus=1, resources={"node_b": 1})
            executor = {"address": cluster.address, "shared_filesystem": True, "num_cpus": TASK_CPUS}
            config = {
                "executor": {"type": "ray", "config": executor},
                "run_log_store": {"type": "chunked-fs", "config": {"log_folder": ".run_log_store"}},
            }
            (project / "config.yaml").write_text(yaml.safe_dump(config))
            workloads = (
                ("chain", arguments.chain, "bare_chain.py", magnus_chain(project, arguments.chain)),
                ("map", arguments.items, "bare_map.py", magnus_map(project, arguments.items)),
            )
            for workload, size, script, magnus_command in workloads:
                bare = [sys.executable, script, cluster.address, str(size)]
                bare_time, printed = timed(bare, project, arguments.repeat)
                magnus_time, _ = timed(magnus_command, project, 1)  # a run id is run once
                steady_times = (float(printed.strip().splitlines()[-1]), steady(project, f"{workload}-{size}"))
                rows.append((workload, size, bare_time, magnus_time, *steady_times))
    print("| workload | bare ray.remote, whole process (s) | magnus, whole process (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for workload, size, bare_time, magnus_time, _, _ in rows:
        print(f"| {workload} of {size} | {bare_time:.2f} | {magnus_time:.2f} | {magnus_time / bare_time:.1f}x |")
    print()
    print("| steady cost of a step | bare ray.remote (ms) | magnus (ms) | magnus's own (ms) | own / bare |")
    print("| --- | --- | --- | --- | --- |")
    for workload, size, _, _, bare_steady, magnus_steady in rows:
        bare_ms, magnus_ms = bare_steady / (size - 1) * 1000, magnus_steady / (size - 1) * 1000
        own = magnus_ms - bare_ms
        print(f"| {workload} of {size} | {bare_ms:.2f} | {magnus_ms:.2f} | {own:.2f} | {own / bare_ms:.1f}x |")


if __name__ == "__main__":
    main()

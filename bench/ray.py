"""magnus on Ray versus bare ``ray.remote`` no-op tasks doing the same work, on a private two-node cluster.

Two workloads of no-op python steps:

- a chain of steps, each started when the one before ended: magnus walks ``s0 -> s1 -> ...``;
  the bare script calls ``ray.get(noop.remote())`` in turn;
- a map over items on both nodes (each task 0.5 CPU: two at once per node): magnus maps a
  no-op step (its items walked in batches once they are seen to be short); the bare script
  submits one task per item and gets them all.

Both sides are a whole process (``magnus execute`` and ``python script.py``), a new Ray job each;
magnus's steps run in Ray workers from their launch requests and record a chunked-fs run log.
Reported: the whole process, and the steady cost of a step once the workers have started
(magnus: the ends its run log records; the bare script: its own clock, after a first task): for
the chain the median time from one step's end to the next's, for the map the time from the
first item's end to the last's, per item. magnus's own overhead is its cost per step less the
bare task's. Each side runs ``--repeat`` times (magnus under a new run id
each time); the fastest is kept.

    python bench/ray.py [--chain 100] [--items 1000] [--repeat 1] [--folder /dev/shm]

Needs magnus-executor-ray and magnus-runlog-chunked installed (``ray[default]`` for ``ray start``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
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

# The chain prints how long each task after the first took, in seconds (a JSON list); the map
# prints the seconds from the end of its first task to the end of its last.
BARE_CHAIN = """
import json, sys, time, ray, bench_noop
ray.init(address=sys.argv[1], logging_level="WARNING")
noop = ray.remote(max_retries=0)(bench_noop.noop).options(num_cpus={cpus})
ray.get(noop.remote())
took = []
for _ in range(int(sys.argv[2]) - 1):
    started = time.perf_counter()
    ray.get(noop.remote())
    took.append(time.perf_counter() - started)
print(json.dumps(took))
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


def step_ends(project: Path, run_id: str) -> List[datetime]:
    """When each task step of the run ended (steps of maps included), in order."""
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
    return sorted(ends)


def steady_ms(workload: str, ends: List[datetime]) -> float:
    """The steady cost of a step, in ms: a chain's median time from one step's end to the next's (a
    step Ray places on a node whose worker starts then is not the steady cost), a map's time from
    its first item's end to its last's, per item."""
    if workload == "chain":
        gaps = [(later - earlier).total_seconds() * 1000 for earlier, later in itertools.pairwise(ends)]
        return statistics.median(gaps)
    return (ends[-1] - ends[0]).total_seconds() * 1000 / (len(ends) - 1)


def bare_steady_ms(workload: str, printed: str, size: int) -> float:
    """The same of the bare script, from what it printed."""
    last = printed.strip().splitlines()[-1]
    if workload == "chain":
        took: List[float] = json.loads(last)
        return statistics.median(took) * 1000
    return float(last) * 1000 / (size - 1)


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
    return [sys.executable, "-m", "magnus", "execute", "-f", name, "-c", "config.yaml"]


def magnus_map(project: Path, items: int) -> List[str]:
    branch = {
        "start_at": "work",
        "steps": {"work": {"type": "task", "command": "bench_noop.item", "next": "success"}, **TERMINALS},
    }
    steps = {"each": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}}
    (project / "map.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "each", "steps": {**steps, **TERMINALS}}}))
    (project / f"items-{items}.yaml").write_text(yaml.safe_dump({"items": list(range(items))}))
    options = ["-c", "config.yaml", "-p", f"items-{items}.yaml"]
    return [sys.executable, "-m", "magnus", "execute", "-f", "map.yaml", *options]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (the fastest is kept)")
    parser.add_argument(
        "--folder", default=None, help="where the project and its run logs go (default: the system's temp folder)"
    )
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="magnus-bench-ray-", dir=arguments.folder) as scratch:
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
                magnus_time, magnus_steady = float("inf"), float("inf")
                for attempt in range(arguments.repeat):  # a run id is run once: a new one each time
                    run_id = f"{workload}-{size}-{attempt}"
                    whole, _ = timed([*magnus_command, "--run-id", run_id], project, 1)
                    magnus_steady = min(magnus_steady, steady_ms(workload, step_ends(project, run_id)))
                    magnus_time = min(magnus_time, whole)
                bare_steady = bare_steady_ms(workload, printed, size)
                rows.append((workload, size, bare_time, magnus_time, bare_steady, magnus_steady))
    print("| workload | bare ray.remote, whole process (s) | magnus, whole process (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for workload, size, bare_time, magnus_time, _, _ in rows:
        print(f"| {workload} of {size} | {bare_time:.2f} | {magnus_time:.2f} | {magnus_time / bare_time:.1f}x |")
    print()
    print("| steady cost of a step | bare ray.remote (ms) | magnus (ms) | magnus's own (ms) | own / bare |")
    print("| --- | --- | --- | --- | --- |")
    for workload, size, _, _, bare_ms, magnus_ms in rows:
        own = magnus_ms - bare_ms
        print(f"| {workload} of {size} | {bare_ms:.2f} | {magnus_ms:.2f} | {own:.2f} | {own / bare_ms:.1f}x |")


if __name__ == "__main__":
    main()

"""magnus on Ray versus bare ``ray.remote`` no-op tasks doing the same work, on a private two-node cluster.

Two workloads of no-op python steps, each at two sizes, so that what every run pays once (starting
Python, ``ray.init``, the first worker of the job, the run log) cancels out of the cost per step:

- a chain of steps, each started when the one before ended: magnus walks ``s0 -> s1 -> ...``;
  the bare script calls ``ray.get(noop.remote())`` in turn;
- a map over items on both nodes (each task 0.5 CPU: two at once per node): magnus maps a
  no-op step; the bare script submits one task per item and gets them all.

Both sides are a whole process (``magnus execute`` and ``python script.py``), a new Ray job each;
magnus's steps run in Ray workers from their launch requests and record a chunked-fs run log. The
cost of an added step is ``(T(large) - T(small)) / (large - small)``; magnus's own overhead is its
cost per step less the bare task's.

    python bench/ray.py [--chain 5 25] [--items 200 1000] [--repeat 1]

Needs magnus-executor-ray and magnus-runlog-chunked installed (``ray[default]`` for ``ray start``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from magnus_executor_ray.cluster import LocalCluster

NOOP = "def noop() -> None:\n    pass\n\n\ndef item(item: int) -> None:\n    pass\n"
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}
TASK_CPUS = 0.5

BARE_CHAIN = """
import sys, ray, bench_noop
ray.init(address=sys.argv[1], logging_level="WARNING")
noop = ray.remote(max_retries=0)(bench_noop.noop)
for _ in range(int(sys.argv[2])):
    ray.get(noop.options(num_cpus={cpus}).remote())
"""
BARE_MAP = """
import sys, ray, bench_noop
ray.init(address=sys.argv[1], logging_level="WARNING")
item = ray.remote(max_retries=0)(bench_noop.item)
ray.get([item.options(num_cpus={cpus}).remote(number) for number in range(int(sys.argv[2]))])
"""


def timed(command: List[str], project: Path, repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``command`` in ``project``, whole process (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=project, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-3000:]}")
        best = min(best, elapsed)
    return best


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
    parameters = f"items-{items}.yaml"
    return [sys.executable, "-m", "magnus", "execute", "-f", "map.yaml", "-c", "config.yaml", "-p", parameters]


def per_added(small: Tuple[int, float], large: Tuple[int, float]) -> float:
    """Milliseconds an added step (or item) costs."""
    return (large[1] - small[1]) / (large[0] - small[0]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, nargs=2, default=[5, 25])
    parser.add_argument("--items", type=int, nargs=2, default=[200, 1000])
    parser.add_argument("--repeat", type=int, default=1)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="magnus-bench-ray-") as scratch:
        root = Path(scratch)
        project = root / "project"
        project.mkdir()
        (project / "bench_noop.py").write_text(NOOP)
        (project / "bare_chain.py").write_text(BARE_CHAIN.format(cpus=TASK_CPUS))
        (project / "bare_map.py").write_text(BARE_MAP.format(cpus=TASK_CPUS))
        with LocalCluster(root / "cluster") as cluster:
            cluster.add_node("node_b", cpus=1, resources={"node_b": 1})
            executor = {"address": cluster.address, "shared_filesystem": True, "num_cpus": TASK_CPUS}
            config = {
                "executor": {"type": "ray", "config": executor},
                "run_log_store": {"type": "chunked-fs", "config": {"log_folder": ".run_log_store"}},
            }
            (project / "config.yaml").write_text(yaml.safe_dump(config))
            bare = [sys.executable]
            results: Dict[str, Dict[str, List[Tuple[int, float]]]] = {"chain": {}, "map": {}}
            for size in arguments.chain:
                results["chain"].setdefault("bare", []).append(
                    (size, timed([*bare, "bare_chain.py", cluster.address, str(size)], project, arguments.repeat))
                )
                results["chain"].setdefault("magnus", []).append(
                    (size, timed(magnus_chain(project, size), project, arguments.repeat))
                )
            for size in arguments.items:
                results["map"].setdefault("bare", []).append(
                    (size, timed([*bare, "bare_map.py", cluster.address, str(size)], project, arguments.repeat))
                )
                results["map"].setdefault("magnus", []).append(
                    (size, timed(magnus_map(project, size), project, arguments.repeat))
                )
    print("| workload | bare ray.remote (s) | magnus (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for workload, unit in (("chain", "steps"), ("map", "items")):
        pairs = zip(results[workload]["bare"], results[workload]["magnus"], strict=True)
        for (size, bare_time), (_, magnus_time) in pairs:
            ratio = magnus_time / bare_time
            print(f"| {workload} of {size} {unit} | {bare_time:.2f} | {magnus_time:.2f} | {ratio:.1f}x |")
    print()
    print("| cost of an added step | bare ray.remote (ms) | magnus (ms) | magnus's own (ms) | own / bare |")
    print("| --- | --- | --- | --- | --- |")
    for workload in ("chain", "map"):
        bare_ms = per_added(*results[workload]["bare"])
        magnus_ms = per_added(*results[workload]["magnus"])
        own = magnus_ms - bare_ms
        print(f"| {workload} | {bare_ms:.1f} | {magnus_ms:.1f} | {own:.1f} | {own / bare_ms:.1f}x |")


if __name__ == "__main__":
    main()

"""What a loop iteration and a conditional cost, next to the steps and map items they stand for.

    python bench/loops.py [--iterations 50] [--repeat 3]

Builds, in a temporary folder, no-op pipelines of the same size: a chain of N python steps, a map
over N items, and a loop running a one-step branch N times (``max_iterations: N``, ``break_on``
never set); and a conditional choosing one of two one-step branches. Each runs as ``magnus
execute`` in its own process with a file-system run log; the median wall time of ``--repeat``
runs is printed as a table, with the cost per unit above an empty pipeline. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import yaml

TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def _task(next_step: str = "success") -> Dict[str, Any]:
    return {"type": "task", "command": "noop.noop", "next": next_step}


def _dag(start_at: str, steps: Dict[str, Any]) -> Dict[str, Any]:
    return {"start_at": start_at, "steps": {**steps, **TERMINALS}}


def pipelines(count: int) -> Dict[str, Dict[str, Any]]:
    """The workloads, by the name shown in the table."""
    chain = {f"s{index}": _task(f"s{index + 1}" if index + 1 < count else "success") for index in range(count)}
    branch = _dag("work", {"work": _task()})
    return {
        "one step (the floor)": _dag("s0", {"s0": _task()}),
        f"chain of {count} steps": _dag("s0", chain),
        f"map over {count} items": _dag(
            "each",
            {"each": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}},
        ),
        f"loop of {count} iterations": _dag(
            "repeat",
            {
                "repeat": {
                    "type": "loop",
                    "branch": branch,
                    "max_iterations": count,
                    "break_on": "done",
                    "index_as": "i",
                    "next": "success",
                }
            },
        ),
        "conditional (one branch of two)": _dag(
            "route",
            {
                "route": {
                    "type": "conditional",
                    "parameter": "size",
                    "branches": {"small": branch, "large": branch},
                    "next": "success",
                }
            },
        ),
    }


def timed(folder: Path, name: str, repeat: int) -> float:
    """The median seconds of ``magnus execute`` on pipeline ``name`` (written in ``folder``)."""
    seconds: List[float] = []
    for run in range(-1, repeat):  # run -1 warms the caches (bytecode, page cache) and is not counted
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "magnus",
                "execute",
                "-f",
                f"{name}.yaml",
                "-c",
                "config.yaml",
                "-p",
                "parameters.yaml",
                "--run-id",
                f"{name}-{run}",
                "-q",
            ],
            cwd=folder,
            check=True,
        )
        if run >= 0:
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    count = options.iterations
    with tempfile.TemporaryDirectory(prefix="magnus-bench-loops-") as scratch:
        folder = Path(scratch)
        (folder / "noop.py").write_text("def noop() -> None:\n    pass\n")
        (folder / "config.yaml").write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: do-nothing\n")
        (folder / "parameters.yaml").write_text(yaml.safe_dump({"items": list(range(count)), "size": "small"}))
        results = {}
        for index, (label, dag) in enumerate(pipelines(count).items()):
            (folder / f"p{index}.yaml").write_text(yaml.safe_dump({"dag": dag}))
            results[label] = timed(folder, f"p{index}", options.repeat)
    floor = results["one step (the floor)"]
    print("| workload | seconds | ms per unit above one step |")
    print("| --- | --- | --- |")
    for label, seconds in results.items():
        units = count if str(count) in label else 1
        extra = "-" if label.startswith("one step") else f"{(seconds - floor) * 1000 / units:.2f}"
        print(f"| {label} | {seconds:.3f} | {extra} |")


if __name__ == "__main__":
    main()

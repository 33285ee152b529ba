"""Steps cached by what they read: what ``--cache`` costs, against ``--use-cached``.

A pipeline of 50 python steps, each in a module of its own: every step reads the parameter
``seed`` and returns a value of its own, except step 26, which reads step 25's. It is run:

1. with ``--cache``, first: every step executes (and records its key);
2. with ``--cache`` again: every step is a hit;
3. with ``--use-cached`` of the first run: every step reused by name (magnus 0.5.1's way);
4. with ``--cache`` after step 25's code changed: steps 25 and 26 run, 48 hits.

Whole ``magnus execute`` processes, median of ``--repeat`` (default 3), run with the python and
``PYTHONPATH`` this script is started with (the checkout's ``src`` folders first, to measure it).
Prints a table; asserts which steps hit, so a number is never of the wrong behaviour.

    PYTHONPATH=$(ls -d packages/*/src | tr '\\n' ':') python bench/cache.py --store file-system
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

STEPS = 50
CHANGED = 25
STORES = {
    "file-system": "run_log_store: {type: file-system}\ncatalog: {type: do-nothing}\n",
    "chunked-fs": "run_log_store: {type: chunked-fs}\ncatalog: {type: do-nothing}\n",
}


def make_project(root: Path, store: str) -> None:
    steps: Dict[str, object] = {}
    for number in range(1, STEPS + 1):
        argument = f"y_{CHANGED}" if number == CHANGED + 1 else "seed"
        (root / f"step_{number:02d}.py").write_text(
            f"def run({argument}: int) -> dict:\n    return {{'y_{number}': {argument} + {number}}}\n"
        )
        following = f"s{number + 1:02d}" if number < STEPS else "success"
        steps[f"s{number:02d}"] = {"type": "task", "command": f"step_{number:02d}.run", "next": following}
    steps["success"] = {"type": "success"}
    steps["fail"] = {"type": "fail"}
    (root / "pipeline.yaml").write_text(json.dumps({"dag": {"start_at": "s01", "steps": steps}}))
    (root / "params.yaml").write_text("seed: 1\n")
    (root / "config.yaml").write_text(STORES[store])


def execute(root: Path, run_id: str, *extra: str) -> float:
    command = [sys.executable, "-m", "magnus", "execute", "-c", "config.yaml", "-p", "params.yaml"]
    started = time.perf_counter()
    result = subprocess.run([*command, "--run-id", run_id, "-q", *extra], cwd=root, capture_output=True, text=True)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{run_id}: {result.stderr}")
    return took


def reused(root: Path, run_id: str) -> List[str]:
    import magnus

    steps = magnus.Run(run_id, config=str(root / "config.yaml")).log.steps
    return [name for name, step in steps.items() if step.cache is not None and step.cache.reused_from is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=sorted(STORES), default="file-system")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    timings: Dict[str, List[float]] = {"first": [], "hits": [], "use_cached": [], "changed": []}
    for attempt in range(options.repeat):
        with tempfile.TemporaryDirectory(prefix="magnus-bench-cache-") as folder:
            root = Path(folder)
            make_project(root, options.store)
            import os

            os.chdir(root)
            timings["first"].append(execute(root, "first", "--cache"))
            timings["hits"].append(execute(root, "hits", "--cache"))
            timings["use_cached"].append(execute(root, "resumed", "--use-cached", "first"))
            changed = root / f"step_{CHANGED}.py"
            changed.write_text(changed.read_text().replace(f"+ {CHANGED}}}", f"+ {CHANGED} + 1}}"))
            timings["changed"].append(execute(root, "changed", "--cache"))
            if attempt == 0:
                everything = [f"s{number:02d}" for number in range(1, STEPS + 1)]
                assert reused(root, "hits") == everything, reused(root, "hits")
                expected = [name for name in everything if name not in (f"s{CHANGED}", f"s{CHANGED + 1}")]
                assert reused(root, "changed") == expected, reused(root, "changed")
            os.chdir("/")
    median = {name: statistics.median(values) for name, values in timings.items()}
    ratio = median["hits"] / median["use_cached"]
    print(f"50 python steps, {options.store} run log, do-nothing catalog; median of {options.repeat}, whole process\n")
    print("| run | seconds | steps run | steps reused |")
    print("| --- | --- | --- | --- |")
    print(f"| first, `--cache` | {median['first']:.3f} | 50 | 0 |")
    print(f"| again, `--cache` (all hits) | {median['hits']:.3f} | 0 | 50 |")
    print(f"| `--use-cached first` (by name) | {median['use_cached']:.3f} | 0 | 50 |")
    print(f"| step {CHANGED}'s code changed, `--cache` | {median['changed']:.3f} | 2 | 48 |")
    verdict = "met" if ratio <= 1.5 else "NOT met"
    print(f"\nall hits / --use-cached: {ratio:.2f}x (target <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()

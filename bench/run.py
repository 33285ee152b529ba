"""Side-by-side benchmarks of magnus against magnus 0.5.1 (and, with --peers, runnable 0.50 and Kedro 1.7).

Whole-process wall time, median of repeated runs, in git repositories with and without an origin
remote (the remote is never contacted). Prints tables; asserts nothing.

    python bench/run.py                 # the standard table and the map scaling curve
    python bench/run.py --peers         # also runnable 0.50 (SDK) and Kedro's SequentialRunner
    python bench/run.py --items 100 1000 5000 10000

Each side runs in a virtual environment of its own under .bench/ (made on first use): ours with
magnus-core, magnus-runlog-chunked and magnus-catalog-fs from this repository, magnus 0.5.1 from PyPI.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
OURS = WORK / "venv-ours"
OLD = WORK / "venv-magnus-0.5.1"
KEDRO = WORK / "venv-kedro"
RUNNABLE = WORK / "venv-runnable"
TRASH = WORK / "trash"
_moved = itertools.count()

NOOP = "def noop():\n    pass\n"
BUSY = "def busy(item: int):\n    total = 0\n    for number in range(16_000_000):\n        total += number % 7\n"


def venv(path: Path, *requirements: str, local: Sequence[str] = ()) -> Path:
    """A virtual environment with ``requirements`` (installed once) and ``local`` packages (every time).

    The local packages are this checkout's, so they are reinstalled on each run: a benchmark of
    yesterday's code would be no benchmark.
    """
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements, *local], check=True)
    elif local:
        reinstall = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", *local]
        subprocess.run(reinstall, check=True)
    return python


def timed(command: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> Tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one process (its stderr kept in a file: a pipe could fill up)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed in {cwd}: {errors.read().decode()[-800:]}")
    return elapsed, usage.ru_maxrss // 1024


def median_of(
    runs: int,
    command: Sequence[str],
    cwd: Path,
    before: Optional[callable] = None,
    env: Optional[Dict[str, str]] = None,
) -> Tuple[float, int]:
    results = []
    for _ in range(runs):
        if before:
            before()
        results.append(timed(command, cwd, env))
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def project(name: str, remote: bool) -> Path:
    """A git repository holding the workloads' pipelines and functions."""
    folder = WORK / "projects" / f"{name}-{'remote' if remote else 'no-remote'}"
    if folder.exists():  # moved aside, as clean() does, and deleted at the end
        TRASH.mkdir(parents=True, exist_ok=True)
        folder.rename(TRASH / f"{os.getpid()}-{next(_moved)}-{folder.name}")
    folder.mkdir(parents=True)
    (folder / "bench_steps.py").write_text(NOOP + "\n\n" + BUSY)
    terminals = {"success": {"type": "success"}, "fail": {"type": "fail"}}
    linear = {
        f"s{i}": {"type": "task", "command": "bench_steps.noop", "next": f"s{i + 1}" if i < 49 else "success"}
        for i in range(50)
    }
    write(folder / "linear.yaml", {"dag": {"start_at": "s0", "steps": {**linear, **terminals}}})
    for name, command in (("map", "bench_steps.noop"), ("busy", "bench_steps.busy")):
        branch = {
            "start_at": "work",
            "steps": {"work": {"type": "task", "command": command, "next": "success"}, **terminals},
        }
        step = {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}
        write(folder / f"{name}.yaml", {"dag": {"start_at": "m", "steps": {"m": step, **terminals}}})
    write(
        folder / "single.yaml",
        {
            "dag": {
                "start_at": "one",
                "steps": {"one": {"type": "task", "command": "bench_steps.noop", "next": "success"}, **terminals},
            }
        },
    )
    # ours names its catalog: with magnus-catalog-fs installed its default would be file-system
    write(folder / "fs.yaml", {"run_log_store": {"type": "file-system"}, "catalog": {"type": "do-nothing"}})
    write(folder / "fs-0.5.1.yaml", {"run_log_store": {"type": "file-system"}})  # its default catalog: file-system
    write(folder / "fs-catalog.yaml", {"run_log_store": {"type": "file-system"}, "catalog": {"type": "file-system"}})
    write(folder / "chunked.yaml", {"run_log_store": {"type": "chunked-fs"}, "catalog": {"type": "do-nothing"}})
    write(folder / "chunked-0.5.1.yaml", {"run_log_store": {"type": "chunked-fs"}})
    write(
        folder / "workers.yaml",
        {
            "run_log_store": {"type": "chunked-fs"},
            "catalog": {"type": "do-nothing"},
            "executor": {"type": "local", "config": {"max_workers": 2}},
        },
    )
    git = ["git", "-c", "user.email=bench@example.invalid", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    if remote:
        subprocess.run([*git, "remote", "add", "origin", "https://example.invalid/bench.git"], cwd=folder, check=True)
    subprocess.run([*git, "add", "."], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "bench"], cwd=folder, check=True)
    return folder


def write(path: Path, data: object) -> None:
    """YAML without anchors: magnus 0.5.1 mutates shared mappings while parsing them."""
    path.write_text(yaml.safe_dump(json.loads(json.dumps(data))))


def items_file(folder: Path, count: int) -> str:
    name = f"items-{count}.yaml"
    write(folder / name, {"items": list(range(count))})
    return name


def clean(folder: Path) -> callable:
    """Before each run: move what earlier runs wrote out of the project, into TRASH.

    Moving, not deleting: the disk here is mounted with online discard, and deleting thousands of
    files slows every file created in the seconds after, which would bill the next run for the
    last one's clean-up. TRASH is emptied when all is measured.
    """

    def move_aside() -> None:
        TRASH.mkdir(parents=True, exist_ok=True)
        leftovers = [folder / ".run_log_store", folder / ".catalog", *folder.glob("*.execution.log*")]
        for path in leftovers:
            if path.exists():
                path.rename(TRASH / f"{os.getpid()}-{next(_moved)}-{path.name}")

    return move_aside


def magnus_cli(python: Path) -> List[str]:
    return [str(python.parent / "magnus")]


def row(name: str, ours: float, old: Optional[float], target: str) -> str:
    ratio = f"{old / ours:5.1f}x" if old else "  -  "
    old_text = f"{old:8.2f}" if old else "       -"
    return f"| {name:<70} | {ours:8.3f} | {old_text} | {ratio} | {target:<12} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--peers", action="store_true", help="also runnable 0.50 and Kedro 1.7 on the same workloads")
    parser.add_argument("--skip-old", action="store_true", help="do not install or run magnus 0.5.1")
    arguments = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    local = ("magnus-core", "magnus-runlog-chunked", "magnus-catalog-fs")
    ours = venv(OURS, local=[str(ROOT / "packages" / name) for name in local])
    old = None if arguments.skip_old else venv(OLD, "magnus==0.5.1", "setuptools<70")
    runs = arguments.runs
    lines = ["| workload | ours (s) | 0.5.1 (s) | ratio | target |", "| --- | --- | --- | --- | --- |"]
    extra: List[Tuple[int, float, str]] = []  # the map scaling curve: items, seconds, table row
    headline: Dict[str, float] = {}  # ours, for the peers table

    for remote in (True, False):
        folder = project("linear", remote)
        where = "with remote" if remote else "no remote"
        mine, _ = median_of(
            runs, [*magnus_cli(ours), "execute", "-f", "linear.yaml", "-c", "fs.yaml"], folder, clean(folder)
        )
        theirs = None
        if old:
            theirs, _ = median_of(
                runs, [*magnus_cli(old), "execute", "-f", "linear.yaml", "-c", "fs-0.5.1.yaml"], folder, clean(folder)
            )
        lines.append(row(f"50 no-op python steps, file-system run log ({where})", mine, theirs, "<= 0.3 s"))
        if remote:
            headline["linear"] = mine

    # the same steps with the file-system catalog, which keeps each step's execution log (as 0.5.1 does)
    folder = project("linear-catalog", True)
    execute = ["execute", "-f", "linear.yaml", "-c", "fs-catalog.yaml"]
    mine, _ = median_of(runs, [*magnus_cli(ours), *execute], folder, clean(folder))
    theirs = median_of(runs, [*magnus_cli(old), *execute], folder, clean(folder))[0] if old else None
    lines.append(row("50 no-op python steps, file-system run log and catalog (with remote)", mine, theirs, "<= 0.3 s"))

    folder = project("map", True)
    for count in sorted({200, *arguments.items}):
        params = items_file(folder, count)
        mine, memory = median_of(
            runs if count <= 1000 else 1,
            [*magnus_cli(ours), "execute", "-f", "map.yaml", "-c", "chunked.yaml", "-p", params],
            folder,
            clean(folder),
        )
        theirs = None
        if old and count <= 200:
            theirs, _ = median_of(
                1,
                [*magnus_cli(old), "execute", "-f", "map.yaml", "-c", "chunked-0.5.1.yaml", "-p", params],
                folder,
                clean(folder),
            )
        target = "30x 0.5.1" if count == 200 else ("<= 10 s" if count == 5000 else "flat/item")
        lines.append(row(f"map over {count} no-op items, chunked-fs", mine, theirs, target))
        slope = f"{1000 * (mine - extra[-1][1]) / (count - extra[-1][0]):8.3f}" if extra else "       -"
        extra.append(
            (count, mine, f"| {count:>6} | {mine:8.2f} | {1000 * mine / count:8.3f} | {slope} | {memory:6d} |")
        )
        headline[f"map-{count}"] = mine

    helps = [timed([*magnus_cli(ours), "--help"], ROOT)[0] for _ in range(max(runs, 5))]
    old_help = statistics.median(timed([*magnus_cli(old), "--help"], ROOT)[0] for _ in range(runs)) if old else None
    lines.append(row("magnus --help", statistics.median(helps), old_help, "<= 0.10 s"))
    headline["help"] = statistics.median(helps)

    folder = project("single", True)

    def fresh_run() -> None:
        clean(folder)()

    single, _ = median_of(
        runs,
        [*magnus_cli(ours), "execute_single_node", "pod-run", "single.yaml", "one", "-c", "fs.yaml"],
        folder,
        fresh_run,
    )
    lines.append(row("execute_single_node, one no-op step (an Argo pod)", single, None, "<= 0.25 s"))

    params = items_file(folder, 100)  # the run log, made by the command as for execute_single_node, holds them
    fanned, _ = median_of(
        runs,
        [*magnus_cli(ours), "fan", "pod-fan", "m", "-f", "map.yaml", "-m", "out", "-c", "fs.yaml", "-p", params],
        folder,
        fresh_run,
    )
    lines.append(row("fan -m out, a map step of 100 no-op items (an Argo pod)", fanned, None, "-"))

    folder = project("busy", True)
    params = items_file(folder, 8)
    sequential, _ = median_of(
        runs,
        [*magnus_cli(ours), "execute", "-f", "busy.yaml", "-c", "chunked.yaml", "-p", params],
        folder,
        clean(folder),
    )
    parallel, _ = median_of(
        runs,
        [*magnus_cli(ours), "execute", "-f", "busy.yaml", "-c", "workers.yaml", "-p", params],
        folder,
        clean(folder),
    )

    print("\n## magnus vs magnus 0.5.1 (median wall time, whole process)\n")
    print("\n".join(lines))
    print("\n## Map scaling, chunked-fs run log (ours)\n")
    print("| items | seconds | ms per item | ms per added item | peak MB |\n| --- | --- | --- | --- | --- |")
    print("\n".join(line for _, _, line in extra))
    print("\n## Local concurrency: 8 CPU-bound map items of ~0.6 s each, on this machine's cores\n")
    print(
        f"| sequential | {sequential:.2f} s |\n| max_workers: 2 | {parallel:.2f} s |\n| speed-up | "
        f"{sequential / parallel:.2f}x |"
    )
    modules = subprocess.run(
        [str(ours), "-c", "import magnus, sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    heavy = [
        name
        for name in json.loads(modules)
        if name.split(".")[0] in {"pydantic", "yaml", "hera", "docker", "mlflow", "ploomber_engine"}
    ]
    print(f"\n`import magnus` loads heavy modules: {heavy or 'none'}")
    if arguments.peers:
        peers(runs, headline, WORK / "projects" / "linear-remote", WORK / "projects" / "map-remote")
    shutil.rmtree(TRASH, ignore_errors=True)


RUNNABLE_LINEAR = """
from runnable import Pipeline, PythonTask

from bench_steps import noop


def main():
    pipeline = Pipeline(steps=[PythonTask(name=f"s{i}", function=noop) for i in range(50)])
    pipeline.execute(configuration_file="runnable-fs.yaml")
    return pipeline  # runnable imports this function again to read the pipeline


if __name__ == "__main__":
    main()
"""

RUNNABLE_MAP = """
import sys

from runnable import Map, Pipeline, PythonTask

from bench_steps import noop


def main():
    branch = Pipeline(steps=[PythonTask(name="work", function=noop)])
    pipeline = Pipeline(steps=[Map(name="m", branch=branch, iterate_on="items", iterate_as="item")])
    pipeline.execute(configuration_file="runnable-chunked.yaml", parameters_file=sys.argv[1])
    return pipeline


if __name__ == "__main__":
    main()
"""

KEDRO_NODES = """
import sys

from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner


def step(x):
    return x


count, chained = int(sys.argv[1]), sys.argv[2] == "chain"
if chained:  # a line of nodes, each taking the one before's output
    nodes = [node(step, f"d{i}", f"d{i + 1}", name=f"n{i}") for i in range(count)]
else:  # Kedro has no map: one node per item, all reading the same input
    nodes = [node(step, "d0", f"out{i}", name=f"n{i}") for i in range(count)]
SequentialRunner().run(Pipeline(nodes), DataCatalog(datasets={"d0": MemoryDataset(1)}))
"""


def peers(runs: int, ours: Dict[str, float], linear: Path, mapped: Path) -> None:
    """runnable 0.50 (SDK, with its file-system and chunked-fs run logs) and Kedro 1.7 (in memory)."""
    runnable = venv(RUNNABLE, "runnable==0.50.0")
    kedro = venv(KEDRO, "kedro==1.7.0")
    for folder in (linear, mapped):
        (folder / "runnable_linear.py").write_text(RUNNABLE_LINEAR)
        (folder / "runnable_map.py").write_text(RUNNABLE_MAP)
        write(
            folder / "runnable-fs.yaml", {"run_log_store": {"type": "file-system"}, "catalog": {"type": "do-nothing"}}
        )
        write(
            folder / "runnable-chunked.yaml",
            {"run_log_store": {"type": "chunked-fs"}, "catalog": {"type": "do-nothing"}},
        )
    (WORK / "kedro_nodes.py").write_text(KEDRO_NODES)
    params = items_file(mapped, 200)

    runnable_linear, _ = median_of(runs, [str(runnable), "runnable_linear.py"], linear, clean(linear))
    runnable_map, _ = median_of(1, [str(runnable), "runnable_map.py", params], mapped, clean(mapped))
    runnable_help = statistics.median(
        timed([str(runnable.parent / "runnable"), "--help"], ROOT)[0] for _ in range(runs)
    )
    kedro_linear, _ = median_of(runs, [str(kedro), str(WORK / "kedro_nodes.py"), "50", "chain"], WORK)
    kedro_map, _ = median_of(runs, [str(kedro), str(WORK / "kedro_nodes.py"), "200", "fan"], WORK)
    kedro_help = statistics.median(timed([str(kedro.parent / "kedro"), "--help"], WORK)[0] for _ in range(runs))

    print("\n## Peers (median wall time, whole process; ours and runnable persist a run log, Kedro nothing)\n")
    print("| workload | ours (s) | runnable 0.50 (s) | Kedro 1.7 (s) |\n| --- | --- | --- | --- |")
    table = (
        ("50 no-op python steps", ours["linear"], runnable_linear, kedro_linear),
        ("map over 200 no-op items (Kedro: 200 nodes)", ours["map-200"], runnable_map, kedro_map),
        ("--help", ours["help"], runnable_help, kedro_help),
    )
    for name, mine, theirs, kedros in table:
        cells = f"{theirs:8.2f} ({theirs / mine:.1f}x) | {kedros:8.2f} ({kedros / mine:.1f}x)"
        print(f"| {name:<44} | {mine:8.3f} | {cells} |")


if __name__ == "__main__":
    main()

"""Side-by-side benchmarks of magnus against magnus 0.5.1 (and, with --peers, Kedro).

Whole-process wall time, median of repeated runs, in git repositories with and without an origin
remote (the remote is never contacted). Prints tables; asserts nothing.

    python bench/run.py                 # the standard table and the map scaling curve
    python bench/run.py --peers         # also Kedro's SequentialRunner on the same workloads
    python bench/run.py --items 100 1000 5000 10000

Each side runs in a virtual environment of its own under .bench/ (made on first use): ours with
magnus-core and magnus-runlog-chunked from this repository, magnus 0.5.1 from PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
OURS = WORK / "venv-ours"
OLD = WORK / "venv-magnus-0.5.1"
KEDRO = WORK / "venv-kedro"

NOOP = "def noop():\n    pass\n"
BUSY = "def busy(item: int):\n    total = 0\n    for number in range(2_000_000):\n        total += number % 7\n"


def venv(path: Path, *requirements: str) -> Path:
    """A virtual environment with ``requirements``, made once."""
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


def timed(command: Sequence[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> Tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed in {cwd}: {process.stderr.read().decode()[-800:]}")
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
    if folder.exists():
        shutil.rmtree(folder)
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
    write(folder / "fs.yaml", {"run_log_store": {"type": "file-system"}})
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
    def remove() -> None:
        for sub in (".run_log_store", ".catalog"):
            shutil.rmtree(folder / sub, ignore_errors=True)
        for log in folder.glob("*.execution.log*"):
            log.unlink()

    return remove


def magnus_cli(python: Path) -> List[str]:
    return [str(python.parent / "magnus")]


def row(name: str, ours: float, old: Optional[float], target: str) -> str:
    ratio = f"{old / ours:5.1f}x" if old else "  -  "
    old_text = f"{old:8.2f}" if old else "       -"
    return f"| {name:<52} | {ours:8.3f} | {old_text} | {ratio} | {target:<12} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--peers", action="store_true", help="also Kedro on the same workloads")
    parser.add_argument("--skip-old", action="store_true", help="do not install or run magnus 0.5.1")
    arguments = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    ours = venv(OURS, str(ROOT / "packages" / "magnus-core"), str(ROOT / "packages" / "magnus-runlog-chunked"))
    old = None if arguments.skip_old else venv(OLD, "magnus==0.5.1", "setuptools<70")
    runs = arguments.runs
    lines = ["| workload | ours (s) | 0.5.1 (s) | ratio | target |", "| --- | --- | --- | --- | --- |"]
    extra: List[str] = []

    for remote in (True, False):
        folder = project("linear", remote)
        where = "with remote" if remote else "no remote"
        mine, _ = median_of(
            runs, [*magnus_cli(ours), "execute", "-f", "linear.yaml", "-c", "fs.yaml"], folder, clean(folder)
        )
        theirs = None
        if old:
            theirs, _ = median_of(
                runs, [*magnus_cli(old), "execute", "-f", "linear.yaml", "-c", "fs.yaml"], folder, clean(folder)
            )
        lines.append(row(f"50 no-op python steps, file-system run log ({where})", mine, theirs, "<= 0.3 s"))

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
        extra.append(f"| {count:>6} | {mine:8.2f} | {1000 * mine / count:8.3f} | {memory:6d} |")

    helps = [timed([*magnus_cli(ours), "--help"], ROOT)[0] for _ in range(max(runs, 5))]
    old_help = statistics.median(timed([*magnus_cli(old), "--help"], ROOT)[0] for _ in range(runs)) if old else None
    lines.append(row("magnus --help", statistics.median(helps), old_help, "<= 0.10 s"))

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
    print("| items | seconds | ms per item | peak MB |\n| --- | --- | --- | --- |")
    print("\n".join(extra))
    print("\n## Local concurrency: 8 CPU-bound map items\n")
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
        if name.split(".")[0] in {"pydantic", "yaml", "stevedore", "hera", "docker", "mlflow", "ploomber_engine"}
    ]
    print(f"\n`import magnus` loads heavy modules: {heavy or 'none'}")
    if arguments.peers:
        peers(runs)


def peers(runs: int) -> None:
    """Kedro's SequentialRunner over 50 no-op nodes (nothing persisted), as a whole process."""
    python = venv(KEDRO, "kedro==1.7.0")
    script = WORK / "kedro_linear.py"
    script.write_text(
        textwrap.dedent("""
        from kedro.io import DataCatalog
        from kedro.pipeline import node, Pipeline
        from kedro.runner import SequentialRunner

        def step(x):
            return x

        nodes = [node(step, "d0" if i == 0 else f"d{i}", f"d{i + 1}", name=f"n{i}") for i in range(50)]
        SequentialRunner().run(Pipeline(nodes), DataCatalog(raw_data={"d0": 1}))
    """)
    )
    seconds, _ = median_of(runs, [str(python), str(script)], WORK)
    print(f"\n## Peers\n\n| Kedro 1.7 SequentialRunner, 50 no-op nodes in memory | {seconds:.2f} s |")
    print("| runnable 0.50 | not measured (see bench/README.md) |")


if __name__ == "__main__":
    main()

"""The cost of a step and of a map item with each run log store: db on PostgreSQL and on SQLite,
file-system and chunked-fs, side by side.

    python bench/runlog_db.py                # median of 3, maps of 1,000 items
    python bench/runlog_db.py --runs 1 --items 200
    python bench/runlog_db.py --only db chunked      # the stores whose names hold these words

Runs with this interpreter, which needs magnus-core, magnus-runlog-chunked and
magnus-runlog-db[postgres] installed (the dev environment has them). A private PostgreSQL server is
started on a free loopback port for the run (initdb + pg_ctl as the ``postgres`` user; fsync on,
as a real server) and stopped at the end. Whole-process wall time of ``magnus execute``; the cost
of a step is the difference between 50 no-op steps and 1, divided by 49, and the cost of an item
the difference between a map of N items and one of 10, divided by N - 10, so start-up is not
counted (a first, unmeasured run creates the database schema). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import median_of

STEPS = "def noop():\n    pass\n\n\ndef work(item):\n    pass\n"
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def pipelines(folder: Path) -> None:
    (folder / "bench_steps.py").write_text(STEPS)
    for count in (1, 50):
        steps = {
            f"s{i}": {
                "type": "task",
                "command": "bench_steps.noop",
                "next": f"s{i + 1}" if i < count - 1 else "success",
            }
            for i in range(count)
        }
        write(folder / f"steps{count}.yaml", {"dag": {"start_at": "s0", "steps": {**steps, **TERMINALS}}})
    branch = {"start_at": "work", "steps": {"work": {"type": "task", "command": "bench_steps.work", "next": "success"}}}
    branch["steps"].update(TERMINALS)
    mapped = {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}
    write(folder / "map.yaml", {"dag": {"start_at": "map", "steps": {"map": mapped, **TERMINALS}}})


def write(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# ---- a private PostgreSQL server ------------------------------------------------------------------
def as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + list(command), check=True, capture_output=True)


def start_postgres() -> Tuple[str, Callable[[], None]]:
    """A new server on a free loopback port: its URL, and how to stop it."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL is not installed: apt-get install -y postgresql")
    bin_folder = os.path.dirname(found[-1])
    folder = tempfile.mkdtemp(prefix="magnus-bench-pg-")
    os.chmod(folder, 0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = os.path.join(folder, "data")
    as_postgres(f"{bin_folder}/initdb", "-D", data, "-U", "postgres", "-A", "trust")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    as_postgres(f"{bin_folder}/pg_ctl", "-D", data, "-o", options, "-l", f"{folder}/log", "-w", "start")
    as_postgres(f"{bin_folder}/createdb", "-h", folder, "-p", str(port), "-U", "postgres", "bench")

    def stop() -> None:
        as_postgres(f"{bin_folder}/pg_ctl", "-D", data, "stop", "-m", "fast", "-w")
        shutil.rmtree(folder, ignore_errors=True)

    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/bench", stop


# ---- measuring ---------------------------------------------------------------------------------------
def stores(postgres_url: str, folder: Path) -> Dict[str, Dict[str, object]]:
    return {
        "db (PostgreSQL, loopback)": {"type": "db", "config": {"connection_string": postgres_url}},
        "db (SQLite)": {"type": "db", "config": {"connection_string": f"sqlite:///{folder}/sqlite/runs.db"}},
        "chunked-fs": {"type": "chunked-fs", "config": {"log_folder": str(folder / "chunked")}},
        "file-system": {"type": "file-system", "config": {"log_folder": str(folder / "fs")}},
    }


def measure(folder: Path, store: Dict[str, object], runs: int, items: int) -> List[float]:
    """Seconds per step, per item (sequential), per item (max_workers: 2)."""
    results = []
    for workers in (1, 2):
        config = {"executor": {"type": "local", "config": {"max_workers": workers}}, "run_log_store": store}
        write(folder / f"config{workers}.yaml", config)
    magnus = [sys.executable, "-m", "magnus", "execute"]
    command = [*magnus, "-c", "config1.yaml", "-f"]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    median_of(1, [*command, "steps1.yaml"], folder, env=env)  # warm-up: creates the schema, fills caches
    one, _ = median_of(runs, [*command, "steps1.yaml"], folder, env=env)
    fifty, _ = median_of(runs, [*command, "steps50.yaml"], folder, env=env)
    results.append((fifty - one) / 49)
    for workers in (1, 2):
        timings = []
        for count in (10, items):
            write(folder / f"items{count}.yaml", {"items": list(range(count))})
            map_command = [*magnus, "-c", f"config{workers}.yaml", "-p", f"items{count}.yaml", "-f", "map.yaml"]
            timings.append(median_of(runs, map_command, folder, env=env)[0])
        results.append((timings[1] - timings[0]) / (items - 10))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--items", type=int, default=1000, help="items of the large map")
    parser.add_argument("--only", nargs="+", default=[], help="measure the stores whose names hold one of these")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="magnus-bench-db-"))
    pipelines(folder)
    url, stop = start_postgres()
    try:
        rows = {
            name: measure(folder, store, options.runs, options.items)
            for name, store in stores(url, folder).items()
            if name == "chunked-fs" or not options.only or any(word in name for word in options.only)
        }
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)
    chunked = rows["chunked-fs"]
    print("\n| run log store | ms per step | ms per item | ms per item, max_workers: 2 | item vs chunked-fs |")
    print("| --- | --- | --- | --- | --- |")
    for name, (step, item, item2) in rows.items():
        print(f"| {name} | {step * 1000:.2f} | {item * 1000:.2f} | {item2 * 1000:.2f} | {item / chunked[1]:.2f}x |")


if __name__ == "__main__":
    main()

"""How the local executor runs a pipeline, in real processes: commands checked before the first
step, one pool of workers at every depth, map results merged in iteration order."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml

from magnus.testing.pipelines import dag, task, write_pipeline
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus

STEPS = '''
import json
import os
import time
from pathlib import Path


def mark(name: str) -> None:
    """Leave a trace that this step ran."""
    Path("ran").mkdir(exist_ok=True)
    Path("ran", name).write_text("")


def first() -> None:
    mark("first")


def timed(hold: float = 1.2) -> None:
    """Record when this step started and ended (wall clock), in which process, at which map values."""
    start = time.time()
    time.sleep(hold)
    Path("times").mkdir(exist_ok=True)
    where = os.environ.get("MAGNUS_MAP_VARIABLE", "")
    record = json.dumps([start, time.time(), os.getpid(), where])
    Path("times", f"{time.time_ns()}-{os.getpid()}.json").write_text(record)


def dies_at_two(item: int) -> None:
    if item == 2:
        os._exit(3)  # the worker process dies mid-step, as with a kill or an OOM


def slow_first(item: int, count: int) -> dict:
    """Later items finish first: iteration 0 sleeps longest."""
    time.sleep(0.15 * (count - item))
    return {"last": item, "square": item * item}
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "exec_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 4\n"
    )
    return tmp_path


def write(project: Path, steps: Dict[str, Any], start_at: str, parameters: Optional[Dict[str, Any]] = None) -> None:
    write_pipeline(project, steps, start_at)
    (project / "parameters.yaml").write_text(yaml.safe_dump(parameters or {}))


# ---- commands checked before the first step ------------------------------------------------------------
def _in_map(command: str) -> Dict[str, Any]:
    return {
        "type": "map",
        "iterate_on": "items",
        "iterate_as": "item",
        "branch": dag("work", {"work": task(command)}),
        "next": "success",
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("exec_stepz.timed", "cannot import 'exec_stepz' for command 'exec_stepz.timed': No module named 'exec_stepz'"),
        ("exec_steps.timd", "module 'exec_steps' has no attribute 'timd' (command 'exec_steps.timd')"),
    ],
)
@pytest.mark.parametrize("executor", ["config.yaml", "mocked"])
def test_a_misspelt_command_in_a_map_branch_is_refused_before_any_step_runs(
    project: Path, command: str, says: str, executor: str
) -> None:
    if executor == "mocked":
        (project / "mocked.yaml").write_text("run_log_store:\n  type: file-system\nexecutor:\n  type: mocked\n")
        executor = "mocked.yaml"
    write(project, {"first": task("exec_steps.first", "each"), "each": _in_map(command)}, "first", {"items": [1, 2]})
    done = magnus("execute", "-f", "pipeline.yaml", "-c", executor, "-p", "parameters.yaml", cwd=project)
    assert done.returncode == 2
    assert done.stderr.strip() == f"Error: step 'each.*.work': {says} (working folder {project})"
    assert not (project / "ran").exists()  # the step before it did not run
    assert not (project / ".run_log_store").exists()  # nor was the run started


@pytest.mark.slow
def test_a_module_failing_as_it_is_imported_is_refused_in_one_line(project: Path) -> None:
    (project / "broken.py").write_text("raise ValueError('no config here')\n")
    write(project, {"first": task("exec_steps.first", "second"), "second": task("broken.step")}, "first")
    done = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "Error: step 'second': cannot import 'broken' for command 'broken.step': ValueError: no config here "
        f"(working folder {project})\n"
    )
    assert not (project / "ran").exists()


def test_the_check_imports_each_module_once_for_the_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing to check is the run's import: the module's top level runs once, in the check."""
    from magnus.entrypoints import execute

    (project / "counted.py").write_text(
        "from pathlib import Path\n"
        "Path('imports').open('a').write('x')\n"
        "def step() -> None:\n    Path('calls').open('a').write('x')\n"
    )
    monkeypatch.chdir(project)
    write(project, {"a": task("counted.step", "b"), "b": task("counted.step")}, "a")
    log = execute("pipeline.yaml", "config.yaml", run_id="once")
    assert log is not None and log.status == "SUCCESS"
    assert ((project / "imports").read_text(), (project / "calls").read_text()) == ("x", "xx")


# ---- one pool of workers at every depth ----------------------------------------------------------------
Interval = Tuple[float, float, int, str]


def _intervals(project: Path) -> List[Interval]:
    return [tuple(json.loads(path.read_text())) for path in (project / "times").iterdir()]  # type: ignore[misc]


def _most_at_once(intervals: List[Interval]) -> int:
    """The most steps running at one instant (at each start, how many intervals hold it)."""
    return max(sum(1 for start, end, _, _ in intervals if start <= at < end) for at, _, _, _ in intervals)


def _map(branch: Dict[str, Any], iterate_on: str, iterate_as: str) -> Dict[str, Any]:
    return {"type": "map", "iterate_on": iterate_on, "iterate_as": iterate_as, "branch": branch, "next": "success"}


def _parallel(*names: str, branch: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "parallel", "branches": {name: branch for name in names}, "next": "success"}


def _all_succeeded(log: Dict[str, Any]) -> bool:
    def steps(holder: Dict[str, Any]) -> List[Dict[str, Any]]:
        found = []
        for step in holder["steps"].values():
            found.append(step)
            for branch in step["branches"].values():
                found.extend(steps(branch))
        return found

    return log["status"] == "SUCCESS" and all(step["status"] == "SUCCESS" for step in steps(log))


@pytest.mark.slow
@pytest.mark.parametrize(
    "nesting",
    [
        pytest.param(
            lambda leaf: _parallel("a", "b", branch=dag("each", {"each": _map(leaf, "items", "item")})),
            id="map-in-parallel",
        ),
        pytest.param(
            lambda leaf: _map(dag("both", {"both": _parallel("a", "b", branch=leaf)}), "items", "item"),
            id="parallel-in-map",
        ),
    ],
)
def test_nested_branches_share_one_pool_of_max_workers(project: Path, nesting: Any) -> None:
    """8 steps of 1.2 s, nested two deep, with max_workers: 4: four at once, never five, four processes."""
    leaf = dag("work", {"work": task("exec_steps.timed")})
    write(project, {"outer": nesting(leaf)}, "outer", {"items": [1, 2, 3, 4]})
    done = magnus(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "workers.yaml",
        "-p",
        "parameters.yaml",
        "--run-id",
        "nested",
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert _all_succeeded(read_log(project, "nested"))
    intervals = _intervals(project)
    assert len(intervals) == 8
    assert _most_at_once(intervals) == 4
    assert len({pid for _, _, pid, _ in intervals}) <= 4


@pytest.mark.slow
def test_branches_nested_three_deep_in_two_workers_do_not_deadlock(project: Path) -> None:
    """Every worker may be waiting for nested branches: waiting workers walk them instead."""
    leaf = dag("work", {"work": task("exec_steps.timed")})
    inner = dag("pairs", {"pairs": _parallel("x", "y", branch=dag("each", {"each": _map(leaf, "inner", "i")}))})
    write(
        project, {"outer": _map(inner, "items", "item")}, "outer", {"items": [1, 2, 3], "inner": [1, 2], "hold": 0.05}
    )
    (project / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 2\n"
    )
    done = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "workers.yaml", "-p", "parameters.yaml", "--run-id", "deep", cwd=project
    )
    assert done.returncode == 0, done.stderr
    assert _all_succeeded(read_log(project, "deep"))
    intervals = _intervals(project)
    assert len(intervals) == 12
    assert _most_at_once(intervals) <= 2 and len({pid for _, _, pid, _ in intervals}) <= 2


@pytest.mark.slow
def test_a_worker_dying_in_a_nested_branch_fails_only_its_iteration(project: Path) -> None:
    pair = _parallel("a", "b", branch=dag("work", {"work": task("exec_steps.dies_at_two")}))
    write(project, {"outer": _map(dag("both", {"both": pair}), "items", "item")}, "outer", {"items": [1, 2, 3]})
    done = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "workers.yaml", "-p", "parameters.yaml", "--run-id", "dies", cwd=project
    )
    assert done.returncode == 1
    log = read_log(project, "dies")
    branches = log["steps"]["outer"]["branches"]
    assert {name: branch["status"] for name, branch in branches.items()} == {
        "outer.1": "SUCCESS",
        "outer.2": "FAIL",
        "outer.3": "SUCCESS",
    }
    assert log["status"] == "FAIL" and log["steps"]["outer"]["status"] == "FAIL"
    assert branches["outer.2"]["steps"]["outer.2.both"]["status"] == "FAIL"


# ---- map results merged in iteration order -------------------------------------------------------------
def _reversed_map(project: Path, reducer: Optional[str], config: str, run_id: str) -> Dict[str, Any]:
    """A map of 4 iterations, the first sleeping longest, each returning ``last`` and ``square``."""
    step = _map(dag("work", {"work": task("exec_steps.slow_first")}), "items", "item")
    if reducer:
        step["reducer"] = reducer
    write(project, {"each": step}, "each", {"items": [0, 1, 2, 3], "count": 4, "last": "before"})
    done = magnus(
        "execute", "-f", "pipeline.yaml", "-c", config, "-p", "parameters.yaml", "--run-id", run_id, cwd=project
    )
    assert done.returncode == 0, done.stderr
    return read_log(project, run_id)


def _ended(log: Dict[str, Any]) -> List[str]:
    """The iterations of ``each`` in the order their step ended."""
    branches = log["steps"]["each"]["branches"]
    ends = {name: branch["steps"][f"{name}.work"]["attempts"][-1]["end_time"] for name, branch in branches.items()}
    return sorted(ends, key=lambda name: ends[name])


@pytest.mark.slow
def test_with_workers_the_last_iteration_sets_a_parameter_whatever_order_they_end_in(project: Path) -> None:
    log = _reversed_map(project, None, "workers.yaml", "merged")
    assert _ended(log) == ["each.3", "each.2", "each.1", "each.0"]  # they did end in reverse
    assert (log["parameters"]["last"], log["parameters"]["square"]) == (3, 9)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["workers.yaml", "config.yaml"])
def test_reducer_collect_lists_what_every_iteration_set_in_iteration_order(project: Path, config: str) -> None:
    log = _reversed_map(project, "collect", config, "collected")
    if config == "workers.yaml":
        assert _ended(log) == ["each.3", "each.2", "each.1", "each.0"]
    assert (log["parameters"]["last"], log["parameters"]["square"]) == ([0, 1, 2, 3], [0, 1, 4, 9])


def test_an_unknown_reducer_is_refused_when_the_pipeline_is_read(project: Path) -> None:
    step = _map(dag("work", {"work": task("exec_steps.first")}), "items", "item")
    write(project, {"each": {**step, "reducer": "sum"}}, "each", {"items": [1]})
    done = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", cwd=project)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("Error: pipeline.yaml: dag.steps.each.reducer: ")
    assert "'collect'" in done.stderr


def test_the_sdk_map_takes_a_reducer(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from magnus.sdk import Map, Pipeline, Task

    monkeypatch.chdir(project)
    (project / "parameters.yaml").write_text("items: [0, 1, 2]\ncount: 3\n")
    work = Task(name="work", command="exec_steps.slow_first", terminate_with_success=True)
    each = Map(
        name="each",
        iterate_on="items",
        iterate_as="item",
        reducer="collect",
        branch=Pipeline(steps=[work]),
        terminate_with_success=True,
    )
    log = Pipeline(steps=[each]).execute(
        configuration_file="config.yaml", parameters_file="parameters.yaml", run_id="sdk-collect"
    )
    assert log is not None and log.status == "SUCCESS" and log.parameters["square"] == [0, 1, 4]

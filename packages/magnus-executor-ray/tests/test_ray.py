"""What Ray users need beyond the contract, against the real two-node cluster of the session."""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from magnus import defaults
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.datastore.models import RunLog
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing.executor import outcome
from magnus_executor_ray.cluster import LocalCluster

pytestmark = pytest.mark.service

STEPS = """
import json
import os
import time
from pathlib import Path


def noop() -> None:
    pass


def timed(item: int) -> None:
    started = time.time()
    time.sleep(0.2)
    Path("times").mkdir(exist_ok=True)
    Path(f"times/{item}.json").write_text(json.dumps([started, time.time()]))


def sleeps_once() -> None:
    if Path("slept.flag").exists():
        return
    Path("slept.flag").write_text("")
    Path("started.flag").write_text("")
    time.sleep(600)


def ticks(item: int) -> None:
    # Ticks every 0.1 s; item 2 sleeps in one call after its first tick, which Ray's cancel
    # (an interrupt raised between Python instructions) cannot end.
    Path(f"started-{item}").write_text(str(os.getpid()))
    while True:
        with open(f"ticks-{item}", "a") as ticks:
            ticks.write(f"{time.time()}\\n")
        time.sleep(600 if item == 2 else 0.1)


def waits_at_40(item: int) -> None:
    if item == 40:
        Path("waiting-40").write_text("")
        while True:  # short sleeps: Ray's cancel interrupts between them
            time.sleep(0.1)
    Path(f"done-{item}").write_text("")


def dies_once() -> None:
    if not Path("died.flag").exists():
        Path("died.flag").write_text("")
        print("dying without a word", flush=True)
        os._exit(3)
"""
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def task(command: str, next_step: str = "success", **extra: Any) -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": next_step, **extra}


def a_map(step: Dict[str, Any], next_step: str = "success") -> Dict[str, Any]:
    branch = {"start_at": "work", "steps": {"work": step, **TERMINALS}}
    return {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": next_step}


def setup(
    project: Path, cluster: LocalCluster, steps: Dict[str, Any], start_at: str, items: int = 3, **executor: Any
) -> None:
    (project / "ray_steps.py").write_text(textwrap.dedent(STEPS))
    (project / "parameters.yaml").write_text(yaml.safe_dump({"items": list(range(items))}))
    dag = {"start_at": start_at, "steps": {**steps, **TERMINALS}}
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag}))
    config = {"address": cluster.address, "shared_filesystem": True, "num_cpus": 0.5, **executor}
    configuration = {
        "executor": {"type": "ray", "config": config},
        "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(configuration))


def run(run_id: str, use_cached: str = "") -> RunLog:
    run_log = execute("pipeline.yaml", "config.yaml", "parameters.yaml", run_id=run_id, use_cached=use_cached)
    assert run_log is not None
    return run_log


def magnus(*arguments: str) -> "subprocess.Popen[str]":
    """``magnus execute`` as a user starts it, in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "magnus", "execute", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def node_ids(cluster: LocalCluster) -> Dict[str, str]:
    """The id of each live node of the cluster, by its custom resource ('head' for the one without)."""
    script = (
        "import json, ray\n"
        f"ray.init(address={cluster.address!r}, logging_level='ERROR')\n"
        "print(json.dumps([[n['NodeID'], n['Resources']] for n in ray.nodes() if n['Alive']]))\n"
    )
    listed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    found: Dict[str, str] = {}
    for node_id, resources in json.loads(listed.stdout.strip().splitlines()[-1]):
        custom = [name for name in resources if name.startswith("node_")]
        found[custom[0] if custom else "head"] = node_id
    return found


def most_at_once(intervals: List[Tuple[float, float]]) -> int:
    """The most intervals overlapping at any moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_a_step_asking_for_a_resource_runs_on_the_node_that_has_it(cluster: LocalCluster, project: Path) -> None:
    setup(
        project,
        cluster,
        {"here": task("ray_steps.noop", "there"), "there": task("ray_steps.noop", overrides={"ray": "on_b"})},
        "here",
        overrides={"on_b": {"resources": {"node_b": 1}}},
    )
    run_log = run("node-b-1")
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    ran_on = run_log.steps["there"].code_identities[0].model_dump()["ray_node_id"]
    assert ran_on == node_ids(cluster)["node_b"]


def test_a_map_of_200_items_never_has_more_than_max_concurrency_in_flight(cluster: LocalCluster, project: Path) -> None:
    """The cluster has room for 4 tasks of 0.25 CPU per node, 8 in all: the cap is the executor's."""
    steps = {"each": a_map(task("ray_steps.timed"))}
    setup(project, cluster, steps, "each", items=200, max_concurrency=4, num_cpus=0.25)
    started = time.monotonic()
    run_log = run("map-200")
    elapsed = time.monotonic() - started
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    intervals = [tuple(json.loads((project / "times" / f"{item}.json").read_text())) for item in range(200)]
    at_once = most_at_once(intervals)  # type: ignore[arg-type]
    print(f"200 items in {elapsed:.0f} s, at most {at_once} at once")
    assert 2 <= at_once <= 4


def test_a_node_dying_mid_step_fails_the_step_and_the_run_then_resume_succeeds(
    cluster: LocalCluster, project: Path
) -> None:
    doomed = cluster.add_node("node_c", cpus=1, resources={"node_c": 1})
    try:
        setup(
            project,
            cluster,
            {
                "first": task("ray_steps.noop", "doomed"),
                "doomed": task("ray_steps.sleeps_once", "after", overrides={"ray": "on_c"}),
                "after": task("ray_steps.noop"),
            },
            "first",
            overrides={"on_c": {"resources": {"node_c": 1}}},
        )
        walk = magnus("-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "died-1")
        wait_for(lambda: (project / "started.flag").exists(), 120, "the step to start on node_c")
        cluster.kill_raylet(doomed)
        _, errors = walk.communicate(timeout=120)
    finally:
        cluster.stop_node(doomed)
    assert walk.returncode == 1, errors
    store = FileSystemRunLogStore(log_folder=".run_log_store")
    died = store.get_run_log_by_id("died-1")
    assert died.status == defaults.FAIL
    assert outcome(died)["doomed"] == defaults.FAIL and "after" not in died.steps
    message = died.steps["doomed"].message
    assert "its Ray node" in message and "died" in message, message

    config = yaml.safe_load((project / "config.yaml").read_text())
    config["executor"]["config"]["overrides"]["on_c"] = {}  # node_c is gone: anywhere will do
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    resumed = run("died-2", use_cached="died-1")
    assert resumed.status == defaults.SUCCESS, outcome(resumed)
    assert resumed.steps["first"].mock is True and resumed.steps["doomed"].mock is False


def test_short_map_items_are_walked_in_batches_and_recorded_each(
    cluster: LocalCluster, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup(project, cluster, {"each": a_map(task("ray_steps.noop"))}, "each", items=300)
    with caplog.at_level(logging.DEBUG, logger=defaults.LOGGER_NAME):
        run_log = run("batches-1")
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    branches = run_log.steps["each"].branches
    assert len(branches) == 300
    assert all(branch.status == defaults.SUCCESS for branch in branches.values())
    assert all(list(branch.steps) == [f"{name}.work", f"{name}.success"] for name, branch in branches.items())
    said = re.search(r"each: 300 branches walked in (\d+) Ray tasks", caplog.text)
    assert said is not None, caplog.text[-2000:]
    assert int(said.group(1)) < 300


def test_ctrl_c_in_a_batch_keeps_what_ended_and_fails_the_rest(cluster: LocalCluster, project: Path) -> None:
    """Items 0-7 go one per task; once they end quickly, the next go in batches: the interrupt reaches
    a batch mid-way (item 40 waits for it)."""
    setup(project, cluster, {"each": a_map(task("ray_steps.waits_at_40"))}, "each", items=80)
    walk = magnus("-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "interrupted-2")
    wait_for(lambda: (project / "waiting-40").exists(), 120, "item 40 to start")
    walk.send_signal(signal.SIGINT)
    _, errors = walk.communicate(timeout=60)
    assert walk.returncode == 130, errors
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("interrupted-2")
    assert run_log.status == defaults.FAIL
    branches = run_log.steps["each"].branches
    assert branches["each.40"].status == defaults.FAIL
    assert branches["each.40"].steps["each.40.work"].message == "interrupted"
    assert {branch.status for branch in branches.values()} == {defaults.SUCCESS, defaults.FAIL}
    for name, branch in branches.items():
        if f"{name}.success" in branch.steps:  # its walk recorded its end (SUCCESS) before the interrupt
            assert branch.status == defaults.SUCCESS, name
        if branch.status == defaults.SUCCESS:
            assert branch.steps[f"{name}.work"].status == defaults.SUCCESS, name


def test_ctrl_c_cancels_every_task_and_exits_130(cluster: LocalCluster, project: Path) -> None:
    setup(project, cluster, {"each": a_map(task("ray_steps.ticks"))}, "each", items=3)
    walk = magnus("-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "interrupted-1")
    wait_for(lambda: all((project / f"ticks-{item}").exists() for item in range(3)), 120, "every item to run")
    walk.send_signal(signal.SIGINT)
    _, errors = walk.communicate(timeout=60)
    assert walk.returncode == 130, errors
    assert "--use-cached interrupted-1" in errors
    # No task is left running: nothing ticks any more.
    ticked = {item: (project / f"ticks-{item}").read_text() for item in range(3)}
    time.sleep(1.5)
    assert {item: (project / f"ticks-{item}").read_text() for item in range(3)} == ticked
    blocked_worker = int((project / "started-2").read_text())
    assert not Path(f"/proc/{blocked_worker}").exists(), "the worker of the task that did not stop was killed"
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("interrupted-1")
    assert run_log.status == defaults.FAIL
    messages = {}
    for name, branch in run_log.steps["each"].branches.items():
        assert branch.status == defaults.FAIL
        messages[name] = [step.message for step in branch.steps.values()]
    killed = "its Ray task was cancelled, its worker killed after 5 s, the walk was interrupted"
    assert messages == {"each.0": ["interrupted"], "each.1": ["interrupted"], "each.2": [killed]}


def test_a_worker_that_dies_fails_its_step_and_a_retry_runs_it_again(cluster: LocalCluster, project: Path) -> None:
    setup(project, cluster, {"flaky": task("ray_steps.dies_once", max_attempts=2)}, "flaky")
    run_log = run("retry-1")
    assert run_log.status == defaults.SUCCESS, run_log.steps["flaky"].message
    attempts = run_log.steps["flaky"].attempts
    assert attempts[0].status == defaults.FAIL and "its Ray worker process died" in attempts[0].message
    assert len(attempts) == 2 and attempts[-1].status == defaults.SUCCESS


def test_stores_in_local_folders_need_a_shared_file_system(cluster: LocalCluster, project: Path) -> None:
    setup(project, cluster, {"one": task("ray_steps.noop")}, "one", shared_filesystem=False)
    with pytest.raises(ConfigurationError, match="shared_filesystem: true") as refused:
        run("unshared-1")
    assert "\n" not in str(refused.value)
    assert not (project / ".run_log_store").exists()


def test_stores_kept_in_one_process_are_refused(cluster: LocalCluster, project: Path) -> None:
    setup(project, cluster, {"one": task("ray_steps.noop")}, "one")
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["run_log_store"] = {"type": "buffered"}
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigurationError, match="keeps its state in one process"):
        run("buffered-1")


def test_unknown_override_is_refused(cluster: LocalCluster, project: Path) -> None:
    setup(project, cluster, {"one": task("ray_steps.noop", overrides={"ray": "gpu"})}, "one", overrides={"big": {}})
    with pytest.raises(ConfigurationError, match=r"'gpu' is not in executor\.config\.overrides"):
        run("override-1")


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("address", [f"127.0.0.1:{_unused_port()}", "198.51.100.1:6379"])
def test_an_unreachable_address_is_one_line_and_exit_2_within_seconds(
    cluster: LocalCluster, project: Path, address: str
) -> None:
    setup(project, cluster, {"one": task("ray_steps.noop")}, "one", address=address)
    started = time.monotonic()
    walk = magnus("-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "unreachable-1")
    _, errors = walk.communicate(timeout=60)
    assert walk.returncode == 2, errors
    assert time.monotonic() - started < 15
    assert errors.strip().count("\n") == 0, errors
    assert f"no Ray cluster answers at '{address}'" in errors and "ray start --head" in errors
    assert not (project / ".run_log_store").exists()


def _raylets() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "raylet":
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_an_empty_address_starts_a_ray_of_the_runs_own_and_stops_it(cluster: LocalCluster, project: Path) -> None:
    setup(project, cluster, {"here": task("ray_steps.noop")}, "here", address="")
    before = _raylets()
    run_log = run("own-ray-1")
    assert run_log.status == defaults.SUCCESS, outcome(run_log)
    ran_on = run_log.steps["here"].code_identities[0].model_dump()["ray_node_id"]
    assert ran_on not in node_ids(cluster).values(), "it ran on a Ray of its own, not on the session's cluster"
    assert _raylets() <= before, "the run's own Ray is stopped with it"

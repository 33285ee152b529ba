"""The runtime's promises: parameters in the environment of every task, work done once per run, the launch protocol."""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Counter, Dict

import pytest

from magnus import defaults, parameters
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.entrypoints import execute, load_pipeline
from magnus.errors import UserInputError
from magnus.runtime.command_line import execute_argv
from magnus.runtime.request import FanIn, FanOut, LaunchRequest, RunStep, WalkBranch
from magnus.runtime.services import RunOptions
from magnus.testing.pipelines import TERMINALS, dag, map_of, task, write_pipeline

STEPS = """
import json
import os


def reads_and_sets_environment(x: int) -> None:
    assert os.environ["MAGNUS_PRM_x"] == json.dumps(x)
    assert json.loads(os.environ["MAGNUS_PRM_listed"]) == [1, "two"]
    os.environ["MAGNUS_PRM_from_python"] = json.dumps({"set": "in python"})
    os.environ["MAGNUS_PRM_x"] = "5"
    os.environ["MAGNUS_TRACK_score_STEP_2"] = "0.5"


def sees_item(item: str) -> None:
    assert os.environ["MAGNUS_PRM_item"] == json.dumps(item)
    assert json.loads(os.environ["MAGNUS_MAP_VARIABLE"]) == {"item": item}
    os.environ[f"MAGNUS_PRM_seen_{item}"] = json.dumps(True)


def first(x: int) -> dict:
    return {"y": x + 1}


def second(y: int) -> None:
    print(y)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runtime_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "parameters.yaml").write_text('x: 1\nlisted: [1, "two"]\nitems: ["a", "b"]\n')
    return tmp_path


def write(project: Path, steps: Dict[str, Any], start_at: str) -> str:
    return write_pipeline(project, steps, start_at)


def test_python_and_shell_tasks_see_parameters_in_the_environment_and_set_them_there(project: Path) -> None:
    """magnus 0.5.1: every task type gets MAGNUS_PRM_<name> (JSON) and what it sets there comes back."""
    pipeline = write(
        project,
        {
            "python": {"type": "task", "command": "runtime_steps.reads_and_sets_environment", "next": "shell"},
            "shell": {
                "type": "task",
                "command_type": "shell",
                "command": 'test "$MAGNUS_PRM_from_python" = \'{"set": "in python"}\' && test "$MAGNUS_PRM_x" = 5 '
                "&& export MAGNUS_PRM_from_shell='\"shell says hi\"'",
                "next": "success",
            },
        },
        "python",
    )
    run_log = execute(pipeline, "config.yaml", "parameters.yaml", run_id="environment")
    assert run_log is not None
    assert run_log.status == defaults.SUCCESS, run_log.steps["shell"].message or run_log.steps["python"].message
    assert run_log.parameters["from_python"] == {"set": "in python"}
    assert run_log.parameters["x"] == 5
    assert run_log.parameters["from_shell"] == "shell says hi"
    assert run_log.steps["python"].user_defined_metrics == {"score": {"2": 0.5}}
    # The environment of this process is as it was: parameters live in the run, not here.
    assert not [key for key in os.environ if key.startswith(defaults.PARAMETER_PREFIX)]


def test_map_iterations_see_their_value_in_the_environment(project: Path) -> None:
    branch = {
        "start_at": "see",
        "steps": {"see": {"type": "task", "command": "runtime_steps.sees_item", "next": "success"}, **TERMINALS},
    }
    pipeline = write(
        project,
        {"each": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}},
        "each",
    )
    run_log = execute(pipeline, "config.yaml", "parameters.yaml", run_id="map-environment")
    assert run_log is not None and run_log.status == defaults.SUCCESS
    assert (run_log.parameters["seen_a"], run_log.parameters["seen_b"]) == (True, True)


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, counts: Counter[str], key: str = "") -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def counting(*args: Any, **kwargs: Any) -> Any:
        counts[key or name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)


def test_a_two_step_run_does_its_per_run_work_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parameters file parsed once, each function imported once, the run's status written once."""
    import magnus.tasks.python as python_tasks

    counts: Counter[str] = collections.Counter()
    imported: Counter[str] = collections.Counter()
    _count_calls(monkeypatch, parameters, "load_parameters_file", counts)
    _count_calls(monkeypatch, FileSystemRunLogStore, "update_run_log_status", counts)
    _count_calls(monkeypatch, FileSystemRunLogStore, "get_run_log_by_id", counts)
    original_import = python_tasks.importlib.import_module

    def counting_import(name: str, package: Any = None) -> Any:
        imported[name] += 1
        return original_import(name, package)

    monkeypatch.setattr(python_tasks.importlib, "import_module", counting_import)
    pipeline = write(
        project,
        {
            "first": {"type": "task", "command": "runtime_steps.first", "next": "second"},
            "second": {"type": "task", "command": "runtime_steps.second", "next": "success"},
        },
        "first",
    )
    run_log = execute(pipeline, "config.yaml", "parameters.yaml", run_id="counted", full=False)
    assert run_log is not None and run_log.status == defaults.SUCCESS
    assert counts["load_parameters_file"] == 1
    assert imported == {"runtime_steps": 2}  # one import per step's function, none for the checks
    assert counts["update_run_log_status"] == 1
    # One read of the parameters per step, one to fold the journal at the end, one to return it.
    assert counts["get_run_log_by_id"] <= 4


RUN = RunOptions(run_id="run-1", pipeline_file="pipeline.yaml", configuration_file="config.yaml")


@pytest.mark.parametrize(
    "request_",
    [
        RunStep(
            run=RunOptions(
                run_id="run-1",
                pipeline_file="pipeline.yaml",
                configuration_file="config.yaml",
                parameters_file="parameters.yaml",
                tag="nightly",
                use_cached="run-0",
                cache=True,
            ),
            step="a step",
            map_variable=json.dumps({"item": 0.5}),
            retry="2",
            then_end=True,
        ),
        FanOut(
            run=RunOptions(
                run_id="{{workflow.parameters.run_id}}", pipeline_file="pipeline.yaml", configuration_file="config.yaml"
            ),
            step="each",
            map_variable="{{inputs.parameters.map_variable}}",
            iterations_file="/tmp/iterations.json",
        ),
        FanIn(run=RUN, step="a par", map_variable=json.dumps({"item": "x y"})),
        WalkBranch(run=RUN, step="each", branch=f"each.{defaults.MAP_PLACEHOLDER}", map_variable='{"item": "b"}'),
        WalkBranch(run=RUN, step="par", branch="par.a branch"),
    ],
    ids=["run-step", "fan-out", "fan-in", "map-branch", "parallel-branch"],
)
def test_a_request_is_read_back_from_its_command_line_by_the_cli(request_: LaunchRequest) -> None:
    """One grammar: what ``to_argv`` writes, the click commands read back into the same value."""
    from magnus.cli import parse_request

    argv = request_.to_argv()
    assert argv[:2] == ["magnus", request_.command]
    assert parse_request(argv[1:]) == request_


def test_names_travel_with_percent_for_each_space() -> None:
    argv = RunStep(run=RUN, step="a step", map_variable=json.dumps({"item": 0.5})).to_argv()
    assert argv[:5] == ["magnus", "execute_single_node", "run-1", "pipeline.yaml", "a%step"]
    assert RunStep(run=RUN, step="x", map_variable='{"item": 0.5}').map_values() == {"item": 0.5}


def test_the_magnus_0_5_1_form_of_execute_single_node_is_read() -> None:
    from magnus.cli import parse_request

    parsed = parse_request(["execute_single_node", "run-1", "a%step", "-f", "old.yaml", "-c", "config.yaml"])
    assert parsed == RunStep(
        run=RunOptions(run_id="run-1", pipeline_file="old.yaml", configuration_file="config.yaml"), step="a step"
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["execute"],
        ["fan", "run", "step", "-f", "p.yaml"],
        ["fan", "run", "step", "-f", "p.yaml", "-m", "sideways"],
        ["fan", "run", "step", "-f", "p.yaml", "-m", "in", "--iterations-file", "x.json"],
    ],
)
def test_a_command_line_that_is_not_a_launch_request_is_refused(argv: list[str]) -> None:
    from magnus.cli import parse_request

    with pytest.raises(UserInputError):
        parse_request(argv)


def test_a_fan_out_writes_the_iterations_for_an_engine(project: Path) -> None:
    """``magnus fan -m out --iterations-file``: what Argo's withParam and SLURM arrays iterate over."""
    from magnus.launched import execute_request

    pipeline = write(project, {"each": map_of("runtime_steps.first")}, "each")
    run = RunOptions(pipeline, "config.yaml", "parameters.yaml", run_id="fanned")
    fan_out = FanOut(run=run, step="each", iterations_file=str(project / "iterations.json"))
    assert execute_request(fan_out) == defaults.PROCESSING
    iterations = json.loads((project / "iterations.json").read_text())
    assert [json.loads(item) for item in iterations] == [{"item": "a"}, {"item": "b"}]
    for item in ("a", "b"):
        position = json.dumps({"item": item})
        assert execute_request(RunStep(run=run, step=f"each.{defaults.MAP_PLACEHOLDER}.work", map_variable=position))
        ending = RunStep(run=run, step=f"each.{defaults.MAP_PLACEHOLDER}.success", map_variable=position)
        assert execute_request(ending) == defaults.SUCCESS
    assert execute_request(FanIn(run=run, step="each")) == defaults.SUCCESS
    stored = FileSystemRunLogStore().get_run_log_by_id("fanned")
    assert sorted(stored.steps["each"].branches) == ["each.a", "each.b"]
    assert stored.steps["each"].status == defaults.SUCCESS


def test_iterations_never_hold_a_double_brace(project: Path) -> None:
    """Argo fills ``{{...}}`` in what its withParam iterates over: map values holding braces are escaped."""
    from magnus.launched import execute_request

    items = ["{{workflow.uid}}", "a{{{b}}}{", {"{{k": "}}"}]
    (project / "parameters.yaml").write_text(json.dumps({"items": items}))
    pipeline = write(project, {"each": map_of("runtime_steps.first")}, "each")
    run = RunOptions(pipeline, "config.yaml", "parameters.yaml", run_id="braced")
    fan_out = FanOut(run=run, step="each", iterations_file=str(project / "iterations.json"))
    assert execute_request(fan_out) == defaults.PROCESSING
    written = json.loads((project / "iterations.json").read_text())
    assert not [item for item in written if "{{" in item]
    assert [json.loads(item) for item in written] == [{"item": item} for item in items]


def test_a_branch_is_walked_in_one_process_from_its_request(project: Path) -> None:
    """``magnus execute_branch``: what a SLURM array task runs, one map item's whole branch."""
    from magnus.launched import execute_request

    branch = dag(
        "first", {"first": task("runtime_steps.sees_item", "second"), "second": {"type": "stub", "next": "success"}}
    )
    pipeline = write(project, {"each": {**map_of(""), "branch": branch}}, "each")
    run = RunOptions(pipeline, "config.yaml", "parameters.yaml", run_id="branched")
    assert execute_request(FanOut(run=run, step="each")) == defaults.PROCESSING
    walked = WalkBranch(
        run=RunOptions(run_id="branched", pipeline_file=pipeline, configuration_file="config.yaml"),
        step="each",
        branch=f"each.{defaults.MAP_PLACEHOLDER}",
        map_variable=json.dumps({"item": "b"}),
    )
    assert execute_request(walked) == defaults.SUCCESS
    stored = FileSystemRunLogStore().get_run_log_by_id("branched")
    statuses = {name: log.status for name, log in stored.steps["each"].branches.items()}
    assert statuses == {"each.a": defaults.PROCESSING, "each.b": defaults.SUCCESS}
    walked_steps = stored.steps["each"].branches["each.b"].steps
    assert {name: step.status for name, step in walked_steps.items()} == {
        "each.b.first": "SUCCESS",
        "each.b.second": "SUCCESS",
        "each.b.success": "SUCCESS",
    }
    assert stored.parameters["seen_b"] is True and "seen_a" not in stored.parameters
    with pytest.raises(UserInputError, match=r"no branch 'each\.z'"):
        execute_request(dataclasses.replace(walked, branch="each.z", map_variable=""))
    with pytest.raises(UserInputError, match="not a composite step"):
        execute_request(dataclasses.replace(walked, step="success"))


FLAKY = """
from pathlib import Path


def flaky() -> None:
    launches = Path("launches")
    launches.write_text(launches.read_text() + "x" if launches.exists() else "x")
    if len(launches.read_text()) < 3:
        raise RuntimeError("not yet")


def counted() -> None:
    ran = Path("counted")
    ran.write_text(ran.read_text() + "x" if ran.exists() else "x")


def counted_failure() -> None:
    counted()
    raise RuntimeError("always")
"""


def test_a_relaunched_step_makes_only_the_attempts_left(project: Path) -> None:
    """A step of ``max_attempts: 3`` launched again after one attempt died: two more, not three."""
    from magnus.launched import execute_request

    (project / "flaky_steps.py").write_text(textwrap.dedent(FLAKY))
    step = {"type": "task", "command": "flaky_steps.counted_failure", "next": "success", "max_attempts": 3}
    pipeline = write(project, {"fails": step}, "fails")
    run = RunOptions(run_id="left", pipeline_file=pipeline, configuration_file="config.yaml")
    assert execute_request(RunStep(run=run, step="fails", retry="1")) == defaults.FAIL
    attempts = FileSystemRunLogStore().get_run_log_by_id("left").steps["fails"].attempts
    assert [attempt.attempt_number for attempt in attempts] == [2, 3]
    assert (project / "counted").read_text() == "xx"


def test_an_engine_retrying_a_step_numbers_its_attempts_across_launches(project: Path) -> None:
    """Argo relaunches a failed step with ``--retry {{retries}}``: the log shows attempts 1, 2, 3."""
    from magnus.launched import execute_request

    (project / "flaky_steps.py").write_text(textwrap.dedent(FLAKY))
    pipeline = write(project, {"flaky": {"type": "task", "command": "flaky_steps.flaky", "next": "success"}}, "flaky")
    launch = RunStep(
        run=RunOptions(run_id="retried", pipeline_file=pipeline, configuration_file="config.yaml"), step="flaky"
    )
    statuses = [execute_request(dataclasses.replace(launch, retry=str(retry))) for retry in range(3)]
    assert statuses == [defaults.FAIL, defaults.FAIL, defaults.SUCCESS]
    attempts = FileSystemRunLogStore().get_run_log_by_id("retried").steps["flaky"].attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [(1, "FAIL"), (2, "FAIL"), (3, "SUCCESS")]
    # A launch that died before recording anything (a pod killed) still counts.
    killed = dataclasses.replace(
        launch,
        run=RunOptions(run_id="killed-once", pipeline_file=pipeline, configuration_file="config.yaml"),
        retry="1",
    )
    execute_request(killed)
    attempts = FileSystemRunLogStore().get_run_log_by_id("killed-once").steps["flaky"].attempts
    assert [a.attempt_number for a in attempts] == [2]
    with pytest.raises(UserInputError, match="--retry: expected a whole number"):
        execute_request(dataclasses.replace(launch, retry="{{retries}}"))


def test_a_step_of_a_resumed_run_walked_elsewhere_is_reused_when_it_succeeded(project: Path) -> None:
    """Each pod of a resumed Argo run reuses its step, if it succeeded in the old run, instead of running it."""
    from magnus.launched import execute_request

    (project / "flaky_steps.py").write_text(textwrap.dedent(FLAKY))
    steps = {
        "counted": {"type": "task", "command": "flaky_steps.counted", "next": "flaky"},
        "flaky": {"type": "task", "command": "flaky_steps.flaky", "next": "success"},
    }
    pipeline = write(project, steps, "counted")
    old = execute(pipeline, "config.yaml", "parameters.yaml", run_id="old")
    assert old is not None and old.status == defaults.FAIL
    (project / "launches").write_text("xx")  # the next launch of flaky succeeds
    for step in ("counted", "flaky", "success"):
        request = RunStep(
            run=RunOptions(run_id="new", pipeline_file=pipeline, configuration_file="config.yaml", use_cached="old"),
            step=step,
        )
        assert execute_request(request) == defaults.SUCCESS
    new = FileSystemRunLogStore().get_run_log_by_id("new")
    assert (new.status, new.use_cached, new.original_run_id) == (defaults.SUCCESS, True, "old")
    assert new.parameters == old.parameters
    reused, ran = new.steps["counted"], new.steps["flaky"]
    assert reused.mock and "not executed: succeeded in run old" in reused.message
    assert (project / "counted").read_text() == "x", "the reused step did not run again"
    assert not ran.mock and ran.status == defaults.SUCCESS


def test_a_whole_run_is_started_elsewhere_and_resumed_by_its_reference() -> None:
    reference = RunOptions(run_id="r-1", pipeline_file="p.yaml", configuration_file="c.yaml", use_cached="r-0")
    assert execute_argv(reference, program=("m",)) == [
        "m",
        "execute",
        "-f",
        "p.yaml",
        "--run-id",
        "r-1",
        "-c",
        "c.yaml",
        "--use-cached",
        "r-0",
    ]
    assert execute_argv(reference, resume=True) == ["magnus", "execute", "-f", "p.yaml", "-c", "c.yaml"]


def test_two_processes_creating_the_run_log_of_a_run_walked_elsewhere_both_go_on(project: Path) -> None:
    """The first pods of a run may both find no run log: one claims it, the other goes on (no error)."""
    from magnus.entrypoints import compose
    from magnus.runtime.services import RunOptions
    from magnus.runtime.units import UnitRecords

    options = RunOptions(configuration_file="config.yaml", parameters_file="parameters.yaml", run_id="claimed")
    pipeline = load_pipeline(write(project, {"a": {"type": "stub", "next": "success"}}, "a"))
    first = compose(pipeline, options)[1]
    UnitRecords(first).ensure_run_log()
    second = compose(pipeline, options)[1]
    # The second process looked before the first created it.
    object.__setattr__(second.run_log_store, "run_log_exists", lambda run_id: False)
    UnitRecords(second).ensure_run_log()
    assert FileSystemRunLogStore().get_run_log_by_id("claimed").parameters["x"] == 1


def test_a_tracker_failing_as_the_run_starts_leaves_the_run_failed_not_processing(project: Path) -> None:
    import dataclasses

    from magnus.entrypoints import compose
    from magnus.errors import MagnusError
    from magnus.executor.local import LocalExecutor
    from magnus.runtime.orchestrator import Orchestrator
    from magnus.runtime.services import RunOptions
    from magnus.tracker import DoNothingTracker

    class Unreachable(DoNothingTracker):
        def start_run(self, run_id: str, tag: str = "", parameters: Dict[str, Any] | None = None) -> None:
            raise MagnusError("experiment_tracker: unreachable")

    pipeline = load_pipeline(write(project, {"a": {"type": "stub", "next": "success"}}, "a"))
    services = compose(pipeline, RunOptions(configuration_file="config.yaml", run_id="untracked"))[1]
    services = dataclasses.replace(services, experiment_tracker=Unreachable())
    with pytest.raises(MagnusError, match="unreachable"):
        Orchestrator(services, LocalExecutor()).run()
    assert FileSystemRunLogStore().get_run_log_by_id("untracked").status == defaults.FAIL


def test_a_run_id_taken_by_another_run_is_left_as_it_is(project: Path) -> None:
    from magnus.errors import RunLogExistsError

    pipeline = write(project, {"a": {"type": "stub", "next": "success"}}, "a")
    assert execute(pipeline, "config.yaml", run_id="taken").status == defaults.SUCCESS  # type: ignore[union-attr]
    with pytest.raises(RunLogExistsError):
        execute(pipeline, "config.yaml", run_id="taken")
    assert FileSystemRunLogStore().get_run_log_by_id("taken").status == defaults.SUCCESS


def test_an_interrupted_shell_step_leaves_no_shell_running(tmp_path: Path) -> None:
    """KeyboardInterrupt while a shell command runs kills the shell (and what it is waiting on)."""
    import signal
    import threading

    from magnus.tasks.shell import _run_streaming

    marker = tmp_path / "started"
    script = f"sleep 30 & echo $$ $! > {marker}; wait"
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _run_streaming(script, dict(os.environ))
    finally:
        timer.cancel()
    shell, sleeper = (int(pid) for pid in marker.read_text().split())
    with pytest.raises(ProcessLookupError):
        os.kill(shell, 0)  # reaped: Popen's exit waited for the killed shell
    for _ in range(50):  # the sleep it started was killed with it (a zombie until init reaps it)
        try:
            if Path(f"/proc/{sleeper}/stat").read_text().split(") ")[-1].startswith("Z"):
                break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the shell's child is still running")

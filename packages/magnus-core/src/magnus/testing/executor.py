"""The promises of an executor, as tests: reference pipelines must end as they do locally.

An executor under test runs each pipeline below from a fresh project folder; the suite checks the
run log's outcome (status of every step and branch, final parameters, metrics).

The executor is either named in the configuration (an installed plugin, loaded by its entry
point as ``magnus execute`` does) or built by a factory (a class, ``lambda: MyExecutor(...)``),
which needs no installation: :func:`run_with_executor` runs a pipeline with a given instance.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import pytest
import yaml

from magnus import defaults
from magnus.datastore.models import RunLog, StepLog
from magnus.entrypoints import execute, load_pipeline, run_pipeline
from magnus.executor.base import BaseExecutor
from magnus.runtime.events import NO_OBSERVER, RunObserver, RunStarted, StepEnded
from magnus.runtime.services import Pipeline, RunOptions

ExecutorFactory = Callable[[], BaseExecutor]
# Runs one of PIPELINES by name with a run id (and the id of a run to resume); returns its run log.
PipelineRunner = Callable[..., RunLog]

# Items of a map that magnus 0.5.1 named alike (str(value)): pairs sharing one branch.
COLLIDING: List[Any] = [1, "1", 0.5, "0.5", True, "True", None, "None"]
# Their branch names: each its own (see magnus.map_position).
COLLIDING_NAMES = ["1~number", "1", "0.5~number", "0.5", "True~boolean", "True", "None~null", "None"]

STEPS_MODULE = (
    '''
"""Functions of the executor contract's pipelines."""
from pathlib import Path

from pydantic import BaseModel

import magnus


class Doubled(BaseModel):
    doubled: int


def first(x: int) -> dict:
    return {"y": x + 1}


def second(y: int) -> Doubled:
    magnus.track_this(seen_y=y)
    return Doubled(doubled=y * 2)


def per_item(item: int) -> dict:
    return {f"seen_{item}": item * 10}


def branch_a() -> dict:
    return {"from_a": "a"}


def branch_b() -> dict:
    return {"from_b": "b"}


def breaks() -> None:
    raise ValueError("broken on purpose")


def breaks_while_flagged() -> None:
    if Path("broken.flag").exists():
        raise ValueError("flagged as broken")


def recover() -> dict:
    return {"recovered": True}


def colliding() -> dict:
    return {"colliding": COLLIDING}


def fails_for_the_number_one(value) -> None:
    if value == 1 and type(value) is int:
        raise ValueError("the number 1 fails")


def count_up(i: int, counter: int = 0) -> dict:
    """One iteration of a loop: counts, and is done at the third."""
    return {"counter": counter + 1, "done": counter + 1 >= 3, "last_index": i}


def never_done(i: int) -> dict:
    return {"last_index": i, "done": False}


def not_a_boolean() -> dict:
    return {"done": "yes"}


def per_item_value(item: int) -> dict:
    return {"value": item * 10}


def total(values: list) -> int:
    return sum(values)


class Box:
    """An object no parameter can hold: it crosses processes pickled, through the catalog."""

    def __init__(self, value: int) -> None:
        self.value = value


def make_box(x: int):
    return x + 10, Box(x * 7), 0.5


def open_box(box: Box, total: int) -> dict:
    return {"unboxed": box.value, "total_seen": total}


def box_item(item: int) -> Box:
    return Box(item * 100)


def open_item(boxed: Box, item: int) -> dict:
    return {f"opened_{item}": boxed.value}


def breaks_at_one_while_flagged(i: int) -> dict:
    if i == 1 and Path("broken.flag").exists():
        raise ValueError("iteration 1 flagged as broken")
    return {"reached": i, "done": i >= 2}
'''
    + f"\n\nCOLLIDING = {COLLIDING!r}\n"
)

TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def _task(command: str, next_step: str = "success", **extra: Any) -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": next_step, **extra}


def _dag(start_at: str, steps: Dict[str, Any]) -> Dict[str, Any]:
    return {"start_at": start_at, "steps": {**steps, **TERMINALS}}


def _loop(command: str, max_iterations: int) -> Dict[str, Any]:
    """A loop running ``command`` in each iteration (index as ``i``), until ``done``."""
    return {
        "type": "loop",
        "max_iterations": max_iterations,
        "break_on": "done",
        "index_as": "i",
        "next": "success",
        "branch": _dag("work", {"work": _task(command)}),
    }


PIPELINES: Dict[str, Dict[str, Any]] = {
    "linear": _dag(
        "first",
        {"first": _task("contract_steps.first", "second"), "second": _task("contract_steps.second")},
    ),
    "shell": _dag(
        "echo",
        {
            "echo": _task(
                'test "$MAGNUS_PRM_x" = "1" && export MAGNUS_PRM_from_shell="shell says hi"',
                command_type="shell",
            )
        },
    ),
    "parallel": _dag(
        "both",
        {
            "both": {
                "type": "parallel",
                "next": "success",
                "branches": {
                    "a": _dag("work", {"work": _task("contract_steps.branch_a")}),
                    "b": _dag("work", {"work": _task("contract_steps.branch_b")}),
                },
            }
        },
    ),
    "map": _dag(
        "each",
        {
            "each": {
                "type": "map",
                "iterate_on": "items",
                "iterate_as": "item",
                "next": "success",
                "branch": _dag("work", {"work": _task("contract_steps.per_item")}),
            }
        },
    ),
    "on_failure": _dag(
        "breaks",
        {
            "breaks": _task("contract_steps.breaks", on_failure="recover"),
            "recover": _task("contract_steps.recover"),
        },
    ),
    "failing": _dag("breaks", {"breaks": _task("contract_steps.breaks")}),
    "colliding_map": _dag(
        "values",
        {
            "values": _task("contract_steps.colliding", "each"),
            "each": {
                "type": "map",
                "iterate_on": "colliding",
                "iterate_as": "value",
                "next": "success",
                "branch": _dag("work", {"work": _task("contract_steps.fails_for_the_number_one")}),
            },
        },
    ),
    "conditional": _dag(
        "choose",
        {
            "choose": {
                "type": "conditional",
                "parameter": "x",
                "next": "success",
                "branches": {
                    "1": _dag("work", {"work": _task("contract_steps.branch_a")}),
                    "2": _dag("work", {"work": _task("contract_steps.branch_b")}),
                },
                "default": _dag("work", {"work": _task("contract_steps.branch_b")}),
            }
        },
    ),
    "conditional_unmatched": _dag(
        "choose",
        {
            "choose": {
                "type": "conditional",
                "parameter": "x",
                "next": "success",
                "branches": {"2": _dag("work", {"work": _task("contract_steps.branch_b")})},
            }
        },
    ),
    "loop": _dag("repeat", {"repeat": _loop("contract_steps.count_up", 5)}),
    "loop_limit": _dag("repeat", {"repeat": _loop("contract_steps.never_done", 2)}),
    "loop_not_boolean": _dag("repeat", {"repeat": _loop("contract_steps.not_a_boolean", 3)}),
    "loop_resumable": _dag("repeat", {"repeat": _loop("contract_steps.breaks_at_one_while_flagged", 4)}),
    "reducer": _dag(
        "each",
        {
            "each": {
                "type": "map",
                "iterate_on": "items",
                "iterate_as": "item",
                "reducer": "contract_steps.total",
                "next": "success",
                "branch": _dag("work", {"work": _task("contract_steps.per_item_value")}),
            }
        },
    ),
    # Returned objects: a python object crosses to the next step (and to each map item's next
    # step, each its own) through the catalog, wherever the steps run.
    "objects": _dag(
        "make",
        {
            "make": _task(
                "contract_steps.make_box",
                "open",
                returns=["total", {"name": "box", "kind": "object"}, {"name": "score", "kind": "metric"}],
            ),
            "open": _task("contract_steps.open_box", "each"),
            "each": {
                "type": "map",
                "iterate_on": "items",
                "iterate_as": "item",
                "next": "success",
                "branch": _dag(
                    "box",
                    {
                        "box": _task("contract_steps.box_item", "open", returns=[{"name": "boxed", "kind": "object"}]),
                        "open": _task("contract_steps.open_item"),
                    },
                ),
            },
        },
    ),
    "resumable": _dag(
        "first",
        {
            "first": _task("contract_steps.first", "flaky"),
            "flaky": _task("contract_steps.breaks_while_flagged", "second"),
            "second": _task("contract_steps.second"),
        },
    ),
}


def outcome(run_log: RunLog) -> Dict[str, str]:
    """``{internal name: status}`` of every step and branch of a run, for comparing executors."""
    found: Dict[str, str] = {}

    def visit(steps: Dict[str, StepLog]) -> None:
        for name, step in steps.items():
            found[name] = step.status
            for branch_name, branch in step.branches.items():
                found[branch_name] = branch.status
                visit(branch.steps)

    visit(run_log.steps)
    return found


def run_with_executor(
    executor: BaseExecutor,
    pipeline: Pipeline,
    options: RunOptions,
    full: bool = True,
    events: RunObserver = NO_OBSERVER,
) -> Optional[RunLog]:
    """Run a whole pipeline as ``magnus execute`` does, with ``executor`` instead of the configured one.

    The services (run log store, catalog, ...) come from ``options.configuration_file``; the run
    log's ``run_config.executor`` records ``executor``. None when it handed the run to an engine.
    """
    return run_pipeline(pipeline, options, full=full, executor=executor, events=events)


class RecordedEvents(RunObserver):
    """The events of a walk seen in this process, as tuples (steps inside maps left out)."""

    def __init__(self) -> None:
        self.seen: List[Tuple[Any, ...]] = []

    def run_started(self, started: RunStarted) -> None:
        self.seen.append(("run_started", started.run_id))

    def step_started(self, name: str, step_type: str, map_variable: defaults.TypeMapVariable) -> None:
        if map_variable is None:
            self.seen.append(("step_started", name))

    def step_ended(self, ended: StepEnded) -> None:
        if ended.map_variable is None:
            self.seen.append(("step_ended", ended.name, ended.status))

    def branches_started(
        self,
        name: str,
        total: int,
        map_variable: defaults.TypeMapVariable,
        dynamic: bool = False,
        iterates: bool = False,
    ) -> None:
        self.seen.append(("branches_started", name, total))

    def composite_ended(self, name: str, total: int, failed: int) -> None:
        self.seen.append(("composite_ended", name, total, failed))

    def run_ended(self, run_id: str, status: str, seconds: float) -> None:
        self.seen.append(("run_ended", run_id, status))

    def handed_off(self, note: str) -> None:
        self.seen.append(("handed_off", note))


class ExecutorContract:
    """Every reference pipeline ends under the executor as it does under ``local``.

    Provide the executor one of two ways:

    - ``configuration`` only: the config file mapping to run with, its ``executor`` block naming
      an installed executor (loaded by its entry point, as ``magnus execute`` does);
    - ``make_executor``: a factory of the executor under test (its class, or
      ``lambda: MyExecutor(option=1)``), not necessarily installed; ``configuration`` then holds
      the services (run log store, catalog, ...): by default a ``file-system`` run log store,
      magnus's defaults for the rest.

    The run log store must be readable from this process after the run. With ``make_executor``,
    processes that run single steps (``runs_steps_elsewhere``) read the configuration file too:
    see :meth:`configuration_file`.
    """

    # The configured store keeps run logs on disk, so a failed run can be resumed.
    resumable: ClassVar[bool] = True

    @pytest.fixture
    def make_executor(self) -> Optional[ExecutorFactory]:
        """None: the executor is the one the ``configuration`` names."""
        return None

    @pytest.fixture
    def configuration(self, make_executor: Optional[ExecutorFactory], tmp_path: Path) -> Dict[str, Any]:
        """With ``make_executor``: run logs in files, which processes running single steps share too."""
        if make_executor is None:
            raise NotImplementedError(
                "provide a configuration fixture (the config file mapping, naming the executor), "
                "or a make_executor fixture (and configuration for the services)"
            )
        return {"run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "run-logs")}}}

    @pytest.fixture
    def project(self, tmp_path: Path, monkeypatch: Any) -> Path:
        folder = tmp_path / "project"
        folder.mkdir()
        (folder / "contract_steps.py").write_text(textwrap.dedent(STEPS_MODULE))
        (folder / "parameters.yaml").write_text("x: 1\nitems: [1, 2, 3]\n")
        monkeypatch.chdir(folder)
        return folder

    @pytest.fixture
    def runner(
        self, project: Path, configuration: Dict[str, Any], make_executor: Optional[ExecutorFactory]
    ) -> PipelineRunner:
        """Runs one of :data:`PIPELINES` (by name) with the executor under test."""

        def run(pipeline: str, run_id: str, use_cached: str = "", events: RunObserver = NO_OBSERVER) -> RunLog:
            return self.run(
                project, configuration, pipeline, run_id, use_cached, make_executor=make_executor, events=events
            )

        return run

    def configuration_file(self, configuration: Dict[str, Any], given_executor: bool) -> Dict[str, Any]:
        """What the configuration file of a run holds.

        With an executor given by a factory, the file still needs an ``executor`` block, because
        every process of the run loads the whole configuration, the processes running single
        steps included. Those never use their executor (they run the one step they were asked
        to), so ``local``, which every installation has, stands in for an executor that may not
        be installed as a plugin. A configuration naming an executor keeps it: its integration
        rules then apply in those processes too.
        """
        if given_executor and "executor" not in configuration:
            return {"executor": {"type": "local"}, **configuration}
        return configuration

    def run(
        self,
        project: Path,
        configuration: Dict[str, Any],
        pipeline: str,
        run_id: str,
        use_cached: str = "",
        make_executor: Optional[ExecutorFactory] = None,
        events: RunObserver = NO_OBSERVER,
    ) -> RunLog:
        """Run one of :data:`PIPELINES` with the executor under test, watched by ``events``; its run log."""
        (project / f"{pipeline}.yaml").write_text(yaml.safe_dump({"dag": PIPELINES[pipeline]}))
        written = self.configuration_file(configuration, given_executor=make_executor is not None)
        (project / "config.yaml").write_text(yaml.safe_dump(written))
        options = RunOptions(
            pipeline_file=f"{pipeline}.yaml",
            configuration_file="config.yaml",
            parameters_file="parameters.yaml",
            run_id=run_id,
            use_cached=use_cached,
        )
        if make_executor is None:
            run_log = execute(
                options.pipeline_file,
                configuration_file=options.configuration_file,
                parameters_file=options.parameters_file,
                run_id=run_id,
                use_cached=use_cached,
                events=events,
            )
        else:
            run_log = run_with_executor(make_executor(), load_pipeline(options.pipeline_file), options, events=events)
        assert run_log is not None, "the executor under test must run the pipeline, not hand it over"
        return run_log

    def test_linear_parameters_flow(self, runner: PipelineRunner) -> None:
        run_log = runner("linear", "linear-1")
        assert run_log.status == defaults.SUCCESS
        assert outcome(run_log) == {"first": "SUCCESS", "second": "SUCCESS", "success": "SUCCESS"}
        assert run_log.parameters == {"x": 1, "items": [1, 2, 3], "y": 2, "doubled": 4}
        assert run_log.steps["second"].user_defined_metrics == {"seen_y": 2}
        attempt = run_log.steps["first"].attempts[0]
        assert attempt.attempt_number == 1 and attempt.start_time <= attempt.end_time

    def test_shell_parameters(self, runner: PipelineRunner) -> None:
        run_log = runner("shell", "shell-1")
        assert run_log.status == defaults.SUCCESS
        assert run_log.parameters["from_shell"] == "shell says hi"

    def test_parallel(self, runner: PipelineRunner) -> None:
        run_log = runner("parallel", "parallel-1")
        assert run_log.status == defaults.SUCCESS
        results = outcome(run_log)
        for branch in ("both.a", "both.b"):
            assert results[branch] == "SUCCESS"
            assert results[f"{branch}.work"] == "SUCCESS"
        assert run_log.parameters["from_a"] == "a" and run_log.parameters["from_b"] == "b"

    def test_map(self, runner: PipelineRunner) -> None:
        events = RecordedEvents()
        run_log = runner("map", "map-1", events=events)
        assert run_log.status == defaults.SUCCESS
        # The walking process reports the steps, wherever they ran (progress on the command line).
        assert events.seen[0] == ("run_started", "map-1") and events.seen[-1] == ("run_ended", "map-1", "SUCCESS")
        for event in (("step_started", "each"), ("branches_started", "each", 3), ("composite_ended", "each", 3, 0)):
            assert event in events.seen, events.seen
        assert events.seen[-2] == ("step_ended", "each", "SUCCESS")
        assert sorted(run_log.steps["each"].branches) == ["each.1", "each.2", "each.3"]
        assert outcome(run_log)["each.2.work"] == "SUCCESS"
        assert [run_log.parameters[f"seen_{item}"] for item in (1, 2, 3)] == [10, 20, 30]

    def test_on_failure_route(self, runner: PipelineRunner) -> None:
        run_log = runner("on_failure", "on-failure-1")
        assert outcome(run_log) == {"breaks": "FAIL", "recover": "SUCCESS", "success": "SUCCESS"}
        assert run_log.status == defaults.SUCCESS
        assert "broken on purpose" in run_log.steps["breaks"].message

    def test_failing_step_fails_the_run(self, runner: PipelineRunner) -> None:
        run_log = runner("failing", "failing-1")
        assert run_log.status == defaults.FAIL
        assert outcome(run_log) == {"breaks": "FAIL", "fail": "SUCCESS"}

    def test_map_items_magnus_0_5_1_named_alike_keep_their_own_branches(self, runner: PipelineRunner) -> None:
        """``1`` and ``"1"`` (``true`` and ``"True"``...) are distinct items: one's failure is not
        overwritten by the other's success, whichever process names their logs."""
        run_log = runner("colliding_map", "colliding-1")
        assert run_log.status == defaults.FAIL
        branches = run_log.steps["each"].branches
        assert sorted(branches) == sorted(f"each.{name}" for name in COLLIDING_NAMES)
        statuses = {name: branch.status for name, branch in branches.items()}
        assert statuses == {
            f"each.{name}": defaults.FAIL if name == "1~number" else defaults.SUCCESS for name in COLLIDING_NAMES
        }
        for name, branch in branches.items():
            assert branch.steps[f"{name}.work"].status == statuses[name]
        assert "the number 1 fails" in branches["each.1~number"].steps["each.1~number.work"].message

    def test_resume_with_use_cached(self, project: Path, runner: PipelineRunner) -> None:
        if not self.resumable:
            pytest.skip("the configured run log store does not outlive the run")
        (project / "broken.flag").write_text("")
        failed = runner("resumable", "resume-1")
        assert failed.status == defaults.FAIL
        (project / "broken.flag").unlink()
        resumed = runner("resumable", "resume-2", use_cached="resume-1")
        assert resumed.status == defaults.SUCCESS
        assert (resumed.use_cached, resumed.original_run_id) == (True, "resume-1")
        assert resumed.steps["first"].mock is True
        assert resumed.steps["flaky"].mock is False
        assert resumed.steps["second"].status == defaults.SUCCESS
        assert resumed.parameters["doubled"] == 4

    # ---- conditional, loop, reducers of your own ------------------------------------------------
    def test_conditional_takes_the_branch_its_parameter_names(self, runner: PipelineRunner) -> None:
        run_log = runner("conditional", "conditional-1")
        assert run_log.status == defaults.SUCCESS
        assert outcome(run_log) == {
            "choose": "SUCCESS",
            "choose.1": "SUCCESS",
            "choose.1.work": "SUCCESS",
            "choose.1.success": "SUCCESS",
            "success": "SUCCESS",
        }
        assert run_log.steps["choose"].message == "took branch '1': x = 1"
        assert run_log.parameters["from_a"] == "a" and "from_b" not in run_log.parameters

    def test_conditional_without_a_match_or_default_fails_naming_the_value(self, runner: PipelineRunner) -> None:
        run_log = runner("conditional_unmatched", "conditional-2")
        assert run_log.status == defaults.FAIL
        assert run_log.steps["choose"].status == defaults.FAIL
        assert run_log.steps["choose"].message == "conditional 'choose': no branch for x = 1 (branches: 2; no default)"
        assert not run_log.steps["choose"].branches

    def test_loop_runs_until_break_on_is_true(self, runner: PipelineRunner) -> None:
        run_log = runner("loop", "loop-1")
        assert run_log.status == defaults.SUCCESS
        step = run_log.steps["repeat"]
        assert list(step.branches) == ["repeat.0", "repeat.1", "repeat.2"]
        assert all(branch.status == defaults.SUCCESS for branch in step.branches.values())
        assert step.message == "stopped after iteration 2: done is true"
        assert (run_log.parameters["counter"], run_log.parameters["last_index"]) == (3, 2)
        attempt = step.branches["repeat.1"].steps["repeat.1.work"].attempts[-1]
        assert attempt.parameters["i"] == 1 and attempt.parameters["counter"] == 1

    def test_loop_reaching_max_iterations_succeeds_saying_so(self, runner: PipelineRunner) -> None:
        run_log = runner("loop_limit", "loop-2")
        assert run_log.status == defaults.SUCCESS
        assert list(run_log.steps["repeat"].branches) == ["repeat.0", "repeat.1"]
        assert run_log.steps["repeat"].message == "stopped after iteration 1: reached max_iterations (2)"

    def test_loop_whose_break_on_is_not_a_boolean_fails(self, runner: PipelineRunner) -> None:
        run_log = runner("loop_not_boolean", "loop-3")
        assert run_log.status == defaults.FAIL
        assert run_log.steps["repeat"].status == defaults.FAIL
        assert "parameter 'done' to break on must be a boolean, got str 'yes'" in run_log.steps["repeat"].message
        assert list(run_log.steps["repeat"].branches) == ["repeat.0"]

    def test_map_reducer_of_your_own(self, runner: PipelineRunner) -> None:
        run_log = runner("reducer", "reducer-1")
        assert run_log.status == defaults.SUCCESS
        assert run_log.parameters["value"] == 60

    def test_returned_objects_reach_later_steps_by_argument_name(self, runner: PipelineRunner) -> None:
        run_log = runner("objects", "objects-1")
        assert run_log.status == defaults.SUCCESS, outcome(run_log)
        assert run_log.parameters["total"] == 11 and run_log.parameters["unboxed"] == 7
        assert run_log.parameters["total_seen"] == 11
        assert [run_log.parameters[f"opened_{item}"] for item in (1, 2, 3)] == [100, 200, 300]
        assert run_log.steps["make"].user_defined_metrics == {"score": 0.5}
        assert "box" not in run_log.parameters and run_log.steps["make"].objects["box"] > 0
        boxed = run_log.steps["each"].branches["each.2"].steps["each.2.box"]
        assert boxed.objects["boxed"] > 0

    def test_a_resumed_loop_starts_at_the_iteration_that_failed(self, project: Path, runner: PipelineRunner) -> None:
        if not self.resumable:
            pytest.skip("the configured run log store does not outlive the run")
        (project / "broken.flag").write_text("")
        failed = runner("loop_resumable", "loop-resume-1")
        assert failed.status == defaults.FAIL
        assert outcome(failed)["repeat.1"] == defaults.FAIL
        (project / "broken.flag").unlink()
        resumed = runner("loop_resumable", "loop-resume-2", use_cached="loop-resume-1")
        assert resumed.status == defaults.SUCCESS
        iterations = resumed.steps["repeat"].branches
        assert list(iterations) == ["repeat.0", "repeat.1", "repeat.2"]
        assert iterations["repeat.0"].steps["repeat.0.work"].mock is True  # reused
        assert iterations["repeat.1"].steps["repeat.1.work"].mock is False  # ran again
        assert resumed.parameters["reached"] == 2

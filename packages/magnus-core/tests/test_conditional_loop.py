"""Conditional and loop steps and map reducers of your own, beyond the executor contract (which every
executor runs): refusals before the run, nesting in maps with and without workers, mocked runs,
resumes, the SDK, and what ``magnus plan`` and ``magnus graph`` show."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from magnus import Conditional, Loop, Map, Pipeline, Task
from magnus.testing.executor import outcome
from magnus.testing.pipelines import dag, error_line, task, write_pipeline
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus

STEPS = """
def sized(size: str) -> dict:
    return {"dataset_size": size}


def quick() -> dict:
    return {"model": "quick"}


def distributed() -> dict:
    return {"model": "distributed"}


def skip() -> dict:
    return {"model": "none"}


def train(iteration: int, seed: int = 0, score: float = 0.0) -> dict:
    score = round(score + 0.25 + seed / 100, 4)
    return {"score": score, "good_enough": score >= 0.7, "trained_at": iteration}


def train_for_seed(iteration: int, seed: int) -> dict:
    # good enough at iteration seed / 10, whatever other items set meanwhile
    return {"good_enough": iteration >= seed // 10, "trained_at": iteration}


def seeded(seed: int, score: float) -> dict:
    return {"score": score + seed}


def best(values: list) -> float:
    return max(values)


def refuses(values: list) -> float:
    raise ValueError("nothing to reduce")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cl_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 3\n"
    )
    (tmp_path / "parameters.yaml").write_text("size: small\nseeds: [0, 10, 20]\n")
    return tmp_path


def conditional(parameter: str = "dataset_size", default: bool = True, **fields: Any) -> Dict[str, Any]:
    step: Dict[str, Any] = {
        "type": "conditional",
        "parameter": parameter,
        "branches": {
            "small": dag("quick", {"quick": task("cl_steps.quick")}),
            "large": dag("distributed", {"distributed": task("cl_steps.distributed")}),
        },
        "next": "success",
        **fields,
    }
    if default:
        step["default"] = dag("skip", {"skip": task("cl_steps.skip")})
    return step


def loop(**fields: Any) -> Dict[str, Any]:
    return {
        "type": "loop",
        "branch": dag("train", {"train": task("cl_steps.train")}),
        "max_iterations": 10,
        "break_on": "good_enough",
        "index_as": "iteration",
        "next": "success",
        **fields,
    }


def execute(project: Path, run_id: str, config: str = "config.yaml") -> "subprocess.CompletedProcess[str]":
    """``magnus execute`` of the project's pipeline and parameters, as a user runs it."""
    return magnus(
        "execute", "-f", "pipeline.yaml", "-c", config, "-p", "parameters.yaml", "--run-id", run_id, cwd=project
    )


# ---- refused before the run, one line, exit 2 ------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"max_iterations": None}, ("steps.repeat.max_iterations", "required field is missing")),
        ({"max_iterations": 0}, ("steps.repeat.max_iterations", "greater than or equal to 1")),
        ({"max_iterations": True}, ("steps.repeat.max_iterations", "valid integer")),
        ({"break_on": "good-enough"}, ("steps.repeat.break_on", "must be a plain name", "'good-enough'")),
        ({"index_as": "2nd"}, ("steps.repeat.index_as", "must be a plain name")),
    ],
)
def test_a_malformed_loop_is_refused_before_any_step_runs(
    project: Path, change: Dict[str, Any], fragments: tuple[str, ...]
) -> None:
    step = {key: value for key, value in {**loop(), **change}.items() if value is not None}
    write_pipeline(project, {"first": task("cl_steps.quick", "repeat"), "repeat": step}, "first")
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    error_line(result, 2, "pipeline.yaml", *fragments)
    assert not (project / ".run_log_store").exists()


@pytest.mark.parametrize(
    ("step", "fragments"),
    [
        (conditional(parameter="data size"), ("steps.route.parameter", "must be a plain name")),
        ({**conditional(), "branches": {}}, ("steps.route.branches", "required: a mapping of branch names")),
        (
            {**conditional(), "branches": {"default": dag("skip", {"skip": task("cl_steps.skip")})}},
            ("steps.route.branches", "a branch named 'default' and a default dag"),
        ),
    ],
)
def test_a_malformed_conditional_is_refused_before_any_step_runs(
    project: Path, step: Dict[str, Any], fragments: tuple[str, ...]
) -> None:
    write_pipeline(project, {"route": step}, "route")
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    error_line(result, 2, "pipeline.yaml", *fragments)


@pytest.mark.parametrize(
    ("reducer", "fragment"),
    [("cl_steps.absent", "has no attribute 'absent'"), ("no_such_module.f", "No module named 'no_such_module'")],
)
def test_a_reducer_that_cannot_be_imported_is_refused_before_any_step_runs(
    project: Path, reducer: str, fragment: str
) -> None:
    branch = dag("train", {"train": task("cl_steps.train")})
    step = {"type": "map", "iterate_on": "seeds", "iterate_as": "seed", "reducer": reducer, "branch": branch}
    write_pipeline(project, {"each": {**step, "next": "success"}}, "each")
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=project)
    error_line(result, 2, "steps.each.reducer", fragment)


# ---- at run time: the step FAIL, saying why ------------------------------------------------------------
def test_a_conditional_whose_parameter_is_not_set_fails_naming_it(project: Path) -> None:
    write_pipeline(project, {"route": conditional(parameter="unset_size")}, "route")
    result = execute(project, "r1")
    error_line(result, 1, "step 'route'", "parameter 'unset_size' is not set (set: seeds, size)")
    assert read_log(project, "r1")["steps"]["route"]["status"] == "FAIL"


def test_a_reducer_that_raises_fails_its_map_step_naming_it(project: Path) -> None:
    (project / "parameters.yaml").write_text("seeds: [0, 10, 20]\nscore: 0.5\n")
    branch = dag("train", {"train": task("cl_steps.seeded")})
    step = {"type": "map", "iterate_on": "seeds", "iterate_as": "seed", "reducer": "cl_steps.refuses"}
    write_pipeline(project, {"each": {**step, "branch": branch, "next": "success"}}, "each")
    result = execute(project, "r2")
    error_line(result, 1, "step 'each'", "reducer cl_steps.refuses raised ValueError: nothing to reduce")
    assert read_log(project, "r2")["steps"]["each"]["status"] == "FAIL"


def test_the_default_branch_is_taken_when_no_branch_matches(project: Path) -> None:
    (project / "parameters.yaml").write_text("size: medium\n")
    write_pipeline(project, {"size": task("cl_steps.sized", "route"), "route": conditional()}, "size")
    result = execute(project, "d")
    assert result.returncode == 0, result.stderr
    log = read_log(project, "d")
    assert list(log["steps"]["route"]["branches"]) == ["route.default"]
    assert log["steps"]["route"]["message"] == "took branch 'default': dataset_size = \"medium\""
    assert log["parameters"]["model"] == "none"
    assert "route SUCCESS" in result.stderr and "took branch 'default'" in result.stderr


# ---- nesting, workers, mocked ----------------------------------------------------------------------
@pytest.mark.parametrize("config", ["config.yaml", "workers.yaml"])
def test_loops_and_conditionals_inside_map_items_each_decide_for_their_item(project: Path, config: str) -> None:
    """Each seed's loop stops on what its own iterations set, whatever other items' loops do at once."""
    inner = {
        "repeat": loop(next="route", branch=dag("train", {"train": task("cl_steps.train_for_seed")})),
        "route": {
            **conditional(parameter="good_enough"),
            "branches": {
                "True": dag("quick", {"quick": task("cl_steps.quick")}),
            },
        },
    }
    each = {
        "type": "map",
        "iterate_on": "seeds",
        "iterate_as": "seed",
        "reducer": "collect",
        "branch": dag("repeat", inner),
        "next": "success",
    }
    write_pipeline(project, {"each": each}, "each")
    run_id = f"nested-{config[:-5]}"
    result = magnus(
        "execute", "-f", "pipeline.yaml", "-c", config, "-p", "parameters.yaml", "--run-id", run_id, cwd=project
    )
    assert result.returncode == 0, result.stderr
    log = read_log(project, run_id)
    items = log["steps"]["each"]["branches"]
    expected = {"each.0": 1, "each.10": 2, "each.20": 3}
    for item, iterations in expected.items():
        repeat = items[item]["steps"][f"{item}.repeat"]
        assert list(repeat["branches"]) == [f"{item}.repeat.{index}" for index in range(iterations)]
        assert repeat["message"] == f"stopped after iteration {iterations - 1}: good_enough is true"
        assert list(items[item]["steps"][f"{item}.route"]["branches"]) == [f"{item}.route.True"]
    assert log["parameters"]["trained_at"] == [0, 1, 2]


def test_a_mocked_run_walks_a_loop_to_its_limit_and_a_conditional_by_its_parameter(project: Path) -> None:
    write_pipeline(
        project,
        {
            "size": task("cl_steps.sized", "route"),
            "route": conditional(next="repeat"),
            "repeat": loop(max_iterations=2),
        },
        "size",
    )
    (project / "parameters.yaml").write_text("size: small\ndataset_size: large\n")
    (project / "mocked.yaml").write_text("run_log_store:\n  type: file-system\nexecutor:\n  type: mocked\n")
    result = magnus(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "mocked.yaml",
        "-p",
        "parameters.yaml",
        "--run-id",
        "mocked",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    log = read_log(project, "mocked")
    assert list(log["steps"]["route"]["branches"]) == ["route.large"]  # the mocked size step set nothing
    assert list(log["steps"]["repeat"]["branches"]) == ["repeat.0", "repeat.1"]
    assert "reached max_iterations (2); 'good_enough' was never set" in log["steps"]["repeat"]["message"]


# ---- resuming ------------------------------------------------------------------------------------------
def test_a_resumed_conditional_chooses_again_and_says_when_the_branch_changed(project: Path) -> None:
    (project / "parameters.yaml").write_text("dataset_size: small\n")
    steps = {"route": conditional(next="broken"), "broken": task("cl_steps.refuses")}
    write_pipeline(project, steps, "route")
    first = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "c-1", cwd=project
    )
    assert first.returncode == 1
    assert list(read_log(project, "c-1")["steps"]["route"]["branches"]) == ["route.small"]
    # resumed with a step before it that now sets the value: it is not reused whole, it chooses again
    (project / "parameters.yaml").write_text("size: large\n")
    write_pipeline(project, {"size": task("cl_steps.sized", "route"), "route": conditional()}, "size")
    second = magnus(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "config.yaml",
        "-p",
        "parameters.yaml",
        "--run-id",
        "c-2",
        "--use-cached",
        "c-1",
        cwd=project,
    )
    assert second.returncode == 0, second.stderr
    route = read_log(project, "c-2")["steps"]["route"]
    assert list(route["branches"]) == ["route.large"]
    assert route["message"] == "took branch 'large': dataset_size = \"large\" (run c-1 took route.small)"
    assert "the branch taken changed since run c-1" in second.stderr


# ---- the SDK, plan and graph -----------------------------------------------------------------------
def sdk_pipeline() -> Pipeline:
    quick = Task(name="quick", command="cl_steps.quick", terminate_with_success=True)
    skip = Task(name="skip", command="cl_steps.skip", terminate_with_success=True)
    train = Task(name="train", command="cl_steps.train", terminate_with_success=True)
    size = Task(name="size", command="cl_steps.sized")
    route = Conditional(
        name="route",
        parameter="dataset_size",
        branches={"small": Pipeline(steps=[quick], add_terminal_nodes=True)},
        default=Pipeline(steps=[skip], add_terminal_nodes=True),
    )
    repeat = Loop(
        name="repeat",
        branch=Pipeline(steps=[train], add_terminal_nodes=True),
        max_iterations=5,
        break_on="good_enough",
        index_as="iteration",
    )
    each = Map(
        name="each",
        iterate_on="seeds",
        iterate_as="seed",
        reducer="cl_steps.best",
        branch=Pipeline(
            steps=[Task(name="train", command="cl_steps.seeded", terminate_with_success=True)], add_terminal_nodes=True
        ),
        terminate_with_success=True,
    )
    size >> route >> repeat >> each
    return Pipeline(start_at=size, steps=[size, route, repeat, each], add_terminal_nodes=True)


def test_the_sdk_builds_the_same_nodes_as_yaml_and_runs_them(project: Path) -> None:
    pipeline = sdk_pipeline()
    steps = pipeline.dag()["steps"]
    assert steps["route"]["type"] == "conditional" and set(steps["route"]["branches"]) == {"small"}
    assert steps["route"]["default"]["start_at"] == "skip"
    assert (steps["repeat"]["type"], steps["repeat"]["max_iterations"]) == ("loop", 5)
    assert steps["each"]["reducer"] == "cl_steps.best"
    run_log = pipeline.execute(configuration_file="config.yaml", parameters_file="parameters.yaml", run_id="sdk")
    assert run_log is not None and run_log.status == "SUCCESS"
    assert outcome(run_log)["route.small.quick"] == "SUCCESS"
    assert list(run_log.steps["repeat"].branches) == ["repeat.0", "repeat.1", "repeat.2"]
    # after the loop score is 0.75; items run in turn, each adding its seed to the score the one before
    # left (magnus 0.5.1's flow of parameters): 0.75, 10.75, 30.75; the reducer keeps the best
    assert run_log.parameters["score"] == 30.75
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": pipeline.dag()}))
    from_yaml = execute(project, "yaml")
    assert from_yaml.returncode == 0, from_yaml.stderr
    assert read_log(project, "yaml")["parameters"] == run_log.parameters


def test_magnus_plan_and_graph_show_both_node_types(project: Path) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": sdk_pipeline().dag()}))
    plan = magnus("plan", "-f", "pipeline.yaml", cwd=project)
    assert plan.returncode == 0, plan.stderr
    assert "route.small" in plan.stdout and "walks branch 'small' when chosen" in plan.stdout
    assert "walks branch 'default' when chosen" in plan.stdout
    assert "walks branch 'loop' once per iteration, then repeat:fan-in" in plan.stdout
    graph = magnus("graph", "-f", "pipeline.yaml", cwd=project)
    assert graph.returncode == 0, graph.stderr
    assert "route" in graph.stdout and "repeat" in graph.stdout


def test_runs_show_diff_and_the_report_diagram_say_what_each_decided(project: Path) -> None:
    from magnus.datastore.models import RunLog
    from magnus.diagram import to_dot
    from magnus.runs.pipeline import node_notes, node_statuses, recorded_graph

    steps = {"size": task("cl_steps.sized", "route"), "route": conditional(next="repeat"), "repeat": loop()}
    write_pipeline(project, steps, "size")
    for run_id, size in (("small-run", "small"), ("large-run", "large")):
        (project / "parameters.yaml").write_text(f"size: {size}\n")
        ran = magnus(
            "execute",
            "-f",
            "pipeline.yaml",
            "-c",
            "config.yaml",
            "-p",
            "parameters.yaml",
            "--run-id",
            run_id,
            cwd=project,
        )
        assert ran.returncode == 0, ran.stderr
    show = magnus("runs", "show", "large-run", "-c", "config.yaml", cwd=project)
    assert "took branch 'large': dataset_size = \"large\"" in show.stdout
    assert "stopped after iteration 2: good_enough is true" in show.stdout
    diff = magnus("runs", "diff", "small-run", "large-run", "-c", "config.yaml", cwd=project)
    assert "SUCCESS: took branch 'small': dataset_size = \"small\" -> SUCCESS: took branch 'large'" in diff.stdout
    run_log = RunLog.model_validate(read_log(project, "large-run"))
    graph = recorded_graph(run_log)
    assert node_notes(graph, run_log) == {"route": "took large", "repeat": "3 iterations"}
    statuses = node_statuses(graph, run_log)
    assert statuses["route.large.distributed"] == "SUCCESS" and "route.small.quick" not in statuses
    dot = to_dot(graph, statuses, node_notes(graph, run_log))
    assert "route (conditional on dataset_size): took large" in dot
    assert "repeat (loop until good_enough, at most 10): 3 iterations" in dot

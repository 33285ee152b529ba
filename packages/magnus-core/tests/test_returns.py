"""A python task's ``returns``: values named as parameters, objects (pickled into the catalog) and
metrics, from YAML and the SDK alike; bad ``returns`` refused before the run, a count mismatch
failing the step. Without ``returns`` a function returns parameters as in magnus 0.5.1."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from magnus import Pipeline, Task, defaults, metric, pickled
from magnus.entrypoints import execute
from magnus.plugins import is_installed
from magnus.testing.pipelines import read_run_log, run_magnus, task, write_pipeline

STEPS = """
class Model:
    def __init__(self, weight: float) -> None:
        self.weight = weight


def train(rate: float):
    return rate * 2, Model(rate * 10), 0.75


def evaluate(model: Model, doubled: float) -> dict:
    return {"weight": model.weight, "seen_doubled": doubled}


def one_value(rate: float) -> float:
    return rate + 1


def three_values():
    return 1, 2, 3


def not_json():
    return float("nan")


def evaluate_unless_flagged(model: Model) -> dict:
    import os

    if os.path.exists("broken.flag"):
        raise ValueError("flagged as broken")
    return {"weight": model.weight}


def returns_a_float_without_returns() -> float:
    return 1.5
"""

RETURNS = ["doubled", {"name": "model", "kind": "object"}, {"name": "score", "kind": "metric"}]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "returning_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "params.yaml").write_text("rate: 0.5\n")
    return tmp_path


# The file-system catalog is magnus-catalog-fs's: with core alone (its nox session), objects are kept
# in the working folder as with any catalog that keeps no data; that package's session runs the
# executor contract's returned objects through its catalog.
KEEPS_DATA = is_installed("catalog", "file-system")
WITH_A_CATALOG = pytest.param(
    True,
    id="file-system catalog",
    marks=pytest.mark.skipif(not KEEPS_DATA, reason="magnus-catalog-fs is not installed here"),
)


def configure(project: Path, catalog: bool) -> str:
    """A configuration keeping run logs in files; objects in the file-system catalog when ``catalog``
    and it is installed, else in the working folder (a catalog that keeps no data)."""
    config: Dict[str, Any] = {
        "run_log_store": {"type": "file-system"},
        "catalog": {"type": "file-system" if catalog and KEEPS_DATA else "do-nothing"},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return "config.yaml"


def train_then_evaluate(project: Path, returns: List[Any]) -> str:
    return write_pipeline(
        project,
        {
            "train": task("returning_steps.train", "evaluate", returns=returns),
            "evaluate": task("returning_steps.evaluate"),
        },
        "train",
    )


@pytest.mark.parametrize("catalog", [WITH_A_CATALOG, pytest.param(False, id="no catalog keeping data")])
def test_named_values_become_a_parameter_an_object_for_the_next_step_and_a_metric(project: Path, catalog: bool) -> None:
    pipeline = train_then_evaluate(project, RETURNS)
    run_log = execute(pipeline, configure(project, catalog), "params.yaml", run_id="returns-1")
    assert run_log.status == defaults.SUCCESS
    assert run_log.parameters == {"rate": 0.5, "doubled": 1.0, "weight": 5.0, "seen_doubled": 1.0}
    train = run_log.steps["train"]
    assert train.user_defined_metrics == {"score": 0.75}
    assert train.attempts[-1].output_parameters == {"doubled": 1.0}
    assert train.objects["model"] > 0
    kept = [entry.name for entry in train.data_catalog]
    assert ("model.pickle" in kept) is catalog
    assert (project / ".magnus" / "objects" / "returns-1" / "model.pickle").is_file() is not catalog


def test_the_sdk_spells_returns_as_yaml_does(project: Path) -> None:
    train = Task(name="train", command="returning_steps.train", returns=["doubled", pickled("model"), metric("score")])
    evaluate = Task(name="evaluate", command="returning_steps.evaluate")
    assert train.to_step()["returns"] == RETURNS
    run_log = Pipeline(steps=[train, evaluate]).execute(
        configuration_file=configure(project, catalog=True), parameters_file="params.yaml", quiet=True
    )
    assert run_log is not None and run_log.status == defaults.SUCCESS
    assert run_log.parameters["weight"] == 5.0
    assert run_log.steps["train"].user_defined_metrics == {"score": 0.75}


def test_runs_show_lists_the_objects_a_step_put_with_their_size(project: Path) -> None:
    pipeline = train_then_evaluate(project, RETURNS)
    config = configure(project, catalog=True)
    assert run_magnus("execute", "-f", pipeline, "-c", config, "-p", "params.yaml", "--run-id", "shown", cwd=project)
    shown = run_magnus("runs", "show", "shown", "-c", config, cwd=project)
    assert shown.returncode == 0, shown.stderr
    size = read_run_log(project, "shown")["steps"]["train"]["objects"]["model"]
    lines = shown.stdout.splitlines()
    below_train = lines[lines.index(next(line for line in lines if line.startswith("train "))) + 1]
    assert below_train.split() == ["model", "object", f"{size}", "B"]


def test_one_name_takes_the_whole_value(project: Path) -> None:
    pipeline = write_pipeline(project, {"one": task("returning_steps.one_value", returns=["bigger"])}, "one")
    run_log = execute(pipeline, configure(project, catalog=False), "params.yaml")
    assert run_log.parameters["bigger"] == 1.5


def test_a_count_of_values_other_than_the_names_fails_the_step_saying_both(project: Path) -> None:
    pipeline = write_pipeline(project, {"three": task("returning_steps.three_values", returns=["a", "b"])}, "three")
    result = run_magnus("execute", "-f", pipeline, "-c", configure(project, catalog=False), cwd=project)
    assert result.returncode == 1
    message = (
        "ParameterError: returning_steps.three_values returned a tuple of 3 values (int, int, int), "
        "but its step returns 2 values (a, b): return a tuple of 2, one value for each name"
    )
    assert "Error: run '" in result.stderr and f"ended FAIL at step 'three': {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_parameter_that_is_not_json_data_fails_the_step_naming_it(project: Path) -> None:
    pipeline = write_pipeline(project, {"nan": task("returning_steps.not_json", returns=["value"])}, "nan")
    run_log = execute(pipeline, configure(project, catalog=False), "params.yaml")
    assert run_log.status == defaults.FAIL
    assert run_log.steps["nan"].message.startswith(
        "ParameterError: returning_steps.not_json returned parameter 'value'"
    )


def test_without_returns_a_function_returns_parameters_as_in_magnus_0_5_1(project: Path) -> None:
    pipeline = write_pipeline(project, {"old": task("returning_steps.returns_a_float_without_returns")}, "old")
    run_log = execute(pipeline, configure(project, catalog=False), "params.yaml")
    assert run_log.status == defaults.FAIL
    assert "return a pydantic model or a dict to set parameters" in run_log.steps["old"].message


@pytest.mark.parametrize(
    ("returns", "problem"),
    [
        ("model", "must be a list of names, got str"),
        ([{"name": "model", "kind": "blob"}], "'model': unknown kind 'blob' (known: parameter, object, metric)"),
        (
            ["two words"],
            "a returned name must be a plain name (letters, digits and '_', not starting with a digit), "
            "got 'two words'",
        ),
        (["x", {"name": "x", "kind": "metric"}], "'x' is named twice"),
        ([{"nme": "x"}], "an entry is a name or {name: ..., kind: ...}, got {'nme': 'x'}"),
    ],
)
def test_bad_returns_are_refused_before_the_run_in_one_line(project: Path, returns: Any, problem: str) -> None:
    pipeline = train_then_evaluate(project, returns)
    result = run_magnus("execute", "-f", pipeline, cwd=project)
    assert result.returncode == 2
    assert result.stderr == f"Error: {pipeline}: dag.steps.train.returns: {problem}\n"
    assert not (project / ".run_log_store").exists()


def test_returns_on_a_shell_task_is_refused_before_the_run(project: Path) -> None:
    pipeline = write_pipeline(project, {"echo": task("echo hi", command_type="shell", returns=["x"])}, "echo")
    result = run_magnus("execute", "-f", pipeline, cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: {pipeline}: dag.steps.echo.returns: unknown field")


def test_an_object_named_as_a_parameter_fails_the_step_before_its_function_runs(project: Path) -> None:
    """An argument of that name would receive the parameter: the object would be silently out of reach."""
    returns = [{"name": "rate", "kind": "object"}]
    pipeline = write_pipeline(project, {"one": task("returning_steps.one_value", returns=returns)}, "one")
    run_log = execute(pipeline, configure(project, catalog=True), "params.yaml")
    assert run_log.status == defaults.FAIL
    assert run_log.steps["one"].message == (
        "ParameterError: returns the object 'rate', but the run has a parameter 'rate', which an argument 'rate' "
        "receives first: name the object otherwise"
    )
    assert run_log.steps["one"].objects == {}


@pytest.mark.parametrize("catalog", [WITH_A_CATALOG, pytest.param(False, id="no catalog keeping data")])
def test_a_resumed_run_gives_the_object_of_a_reused_step_to_the_step_that_failed(project: Path, catalog: bool) -> None:
    steps = {
        "train": task("returning_steps.train", "evaluate", returns=RETURNS),
        "evaluate": task("returning_steps.evaluate_unless_flagged"),
    }
    pipeline = write_pipeline(project, steps, "train")
    config = configure(project, catalog)
    (project / "broken.flag").write_text("")
    assert execute(pipeline, config, "params.yaml", run_id="first").status == defaults.FAIL
    (project / "broken.flag").unlink()
    resumed = execute(pipeline, config, "params.yaml", run_id="second", use_cached="first")
    assert resumed.status == defaults.SUCCESS
    assert resumed.steps["train"].mock is True and resumed.parameters["weight"] == 5.0

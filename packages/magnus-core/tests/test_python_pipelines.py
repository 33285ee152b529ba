"""Python pipelines where YAML ones go (``-f pipeline.py``, ``-f module:name``), nested pipelines in the
SDK, and parameters given to ``execute()``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from magnus import Dag, Pipeline, Task
from magnus.errors import ParameterError, PipelineDefinitionError
from magnus.testing.executor import outcome
from magnus.testing.pipelines import error_line
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus

STEPS = """
def clean(rows: int = 10) -> dict:
    return {"rows": rows}


def train(rows: int) -> dict:
    return {"model": f"trained on {rows}"}
"""

PIPELINE = """
from pathlib import Path

from magnus import Pipeline, Task

clean = Task(name="clean", command="py_steps.clean")
train = Task(name="train", command="py_steps.train")
ours = Pipeline(steps=[clean, train])

if __name__ == "__main__":
    Path("main-ran.flag").write_text("")
    ours.execute()
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "py_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "flow.py").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def test_a_python_file_runs_as_a_yaml_pipeline_does_and_its_main_block_does_not_run(project: Path) -> None:
    ran = magnus("execute", "-f", "flow.py", "-c", "config.yaml", "--run-id", "from-py", cwd=project)
    assert ran.returncode == 0, ran.stderr
    log = read_log(project, "from-py")
    assert list(log["steps"]) == ["clean", "train", "success"] and log["parameters"]["model"] == "trained on 10"
    assert not (project / "main-ran.flag").exists()
    graph = magnus("graph", "-f", "flow.py", cwd=project)
    (project / "flow.yaml").write_text(
        yaml.safe_dump(
            {
                "dag": {
                    "start_at": "clean",
                    "steps": {
                        "clean": {"type": "task", "command": "py_steps.clean", "next": "train"},
                        "train": {"type": "task", "command": "py_steps.train", "next": "success"},
                        "success": {"type": "success"},
                        "fail": {"type": "fail"},
                    },
                }
            },
            sort_keys=False,
        )
    )
    assert graph.stdout == magnus("graph", "-f", "flow.yaml", cwd=project).stdout
    planned = magnus("plan", "-f", "flow.py", cwd=project)
    assert planned.returncode == 0 and "clean" in planned.stdout


def test_a_function_named_pipeline_or_a_name_given_picks_the_pipeline(project: Path) -> None:
    (project / "two.py").write_text(
        textwrap.dedent(
            """
            from magnus import Pipeline, Task

            first = Pipeline(steps=[Task(name="clean", command="py_steps.clean")])
            second = Pipeline(steps=[Task(name="clean", command="py_steps.clean"),
                                     Task(name="train", command="py_steps.train")])
            """
        )
    )
    several = magnus("plan", "-f", "two.py", cwd=project)
    error_line(several, 2, "two.py: 2 pipelines at its top level (first, second): name one with -f two.py:NAME")
    named = magnus("plan", "-f", "two.py:second", cwd=project)
    assert named.returncode == 0 and "train" in named.stdout
    as_module = magnus("plan", "-f", "two:first", cwd=project)
    assert as_module.returncode == 0 and "train" not in as_module.stdout
    (project / "built.py").write_text("from two import second\n\ndef pipeline():\n    return second\n")
    assert "train" in magnus("plan", "-f", "built.py", cwd=project).stdout


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ("empty.py", ("empty.py: no Pipeline at its top level and no function named 'pipeline'",)),
        ("broken.py", ("broken.py: importing it failed: ZeroDivisionError",)),
        ("missing.py", ("pipeline file 'missing.py' not found",)),
        ("two:nothing", ("two:nothing: expected a Pipeline (or a function returning one), got nothing",)),
        ("no_such_module:thing", ("no_such_module: cannot import it: No module named 'no_such_module'",)),
    ],
)
def test_a_python_source_that_holds_no_pipeline_is_refused_in_one_line(
    project: Path, source: str, fragments: tuple[str, ...]
) -> None:
    (project / "empty.py").write_text("x = 1\n")
    (project / "broken.py").write_text("1 / 0\n")
    (project / "two.py").write_text("nothing = None\n")
    error_line(magnus("execute", "-f", source, "-c", "config.yaml", cwd=project), 2, *fragments)


def test_a_nested_pipeline_is_a_dag_step_inline_or_from_a_file(project: Path) -> None:
    inner = Pipeline(steps=[Task(name="train", command="py_steps.train")])
    (project / "inner.yaml").write_text(yaml.safe_dump({"dag": inner.dag()}))
    for nested, run_id in (
        (Dag(name="inner", dag=inner), "inline"),
        (Dag(name="inner", dag_definition="inner.yaml"), "file"),
    ):
        outer = Pipeline(steps=[Task(name="clean", command="py_steps.clean"), nested])
        run_log = outer.execute(configuration_file="config.yaml", run_id=run_id, quiet=True)
        assert run_log is not None and run_log.status == "SUCCESS"
        assert outcome(run_log)["inner.dag.train"] == "SUCCESS"
        assert run_log.parameters["model"] == "trained on 10"
    with pytest.raises(PipelineDefinitionError, match=r"give either dag_definition \(a file\) or dag"):
        Pipeline(steps=[Dag(name="inner", dag=inner, dag_definition="inner.yaml")])


def test_parameters_given_to_execute_start_the_run_on_top_of_the_file(project: Path) -> None:
    (project / "parameters.yaml").write_text("rows: 5\nkept: true\n")
    flow = Pipeline(steps=[Task(name="clean", command="py_steps.clean"), Task(name="train", command="py_steps.train")])
    run_log = flow.execute(
        configuration_file="config.yaml", parameters_file="parameters.yaml", parameters={"rows": 7}, quiet=True
    )
    assert run_log is not None and run_log.parameters == {"rows": 7, "kept": True, "model": "trained on 7"}
    assert (
        run_log.run_config["parameters_file"].startswith(".magnus/parameters/")
        if "parameters_file" in run_log.run_config
        else True
    )
    with pytest.raises(
        ParameterError, match=r"execute\(parameters=\.\.\.\): parameter 'rows': a value of type object is not JSON data"
    ):
        flow.execute(configuration_file="config.yaml", parameters={"rows": object()}, quiet=True)

"""The CLI: commands and options of magnus 0.5.1, errors as one line, no traceback unless asked."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from magnus.testing.pipelines import TERMINALS, dag, map_of, task, write_pipeline
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cli_steps.py").write_text(
        textwrap.dedent(
            """
            def hello(name: str = "world") -> dict:
                print(f"hello {name}")
                return {"greeted": name}

            def boom() -> None:
                raise KeyError("boom")
            """
        )
    )
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def test_help_lists_the_0_5_1_commands(project: Path) -> None:
    result = magnus("--help", cwd=project)
    for command in ("execute", "execute_single_node", "execute_function", "execute_notebook", "fan"):
        assert command in result.stdout
    assert "--use-cached" in magnus("execute", "--help", cwd=project).stdout


def test_failed_run_exits_1_with_the_step_named(project: Path) -> None:
    steps = {"bad": {"type": "task", "command": "cli_steps.boom", "next": "success"}, **TERMINALS}
    (project / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "bad", "steps": steps}}))
    result = magnus("execute", "-f", "p.yaml", "-c", "config.yaml", "--run-id", "r1", cwd=project)
    assert result.returncode == 1
    assert "Error: run 'r1' ended FAIL at step 'bad': KeyError: 'boom'" in result.stderr.splitlines()
    assert read_log(project, "r1")["status"] == "FAIL"


def test_bad_input_has_no_traceback_unless_debugging(project: Path) -> None:
    result = magnus("execute", "-f", "missing.yaml", cwd=project)
    assert (result.returncode, result.stderr.strip()) == (2, "Error: missing.yaml: pipeline file not found")
    debug = magnus("execute", "-f", "missing.yaml", "--log-level", "DEBUG", cwd=project)
    assert "Traceback" in debug.stderr
    assert "Traceback" in magnus("execute", "-f", "missing.yaml", cwd=project, env={"MAGNUS_DEBUG": "1"}).stderr


def test_execute_function(project: Path) -> None:
    (project / "params.yaml").write_text("name: magnus\n")
    (project / "data").mkdir()
    (project / "data" / "x").write_text("put me")
    result = magnus(
        "execute_function",
        "cli_steps.hello",
        "-p",
        "params.yaml",
        "-c",
        "config.yaml",
        "--run-id",
        "fn",
        "-put",
        "x",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    assert "hello magnus" in result.stdout
    log = read_log(project, "fn")
    assert log["steps"]["hello"]["status"] == "SUCCESS" and log["parameters"]["greeted"] == "magnus"
    assert log["run_config"]["dag"]["steps"]["hello"]["catalog"] == {"put": ["x"], "compute_data_folder": "data/"}


def test_execute_notebook_says_what_to_install(project: Path) -> None:
    from magnus.plugins import is_installed

    if is_installed("tasks", "notebook"):
        pytest.skip("magnus-task-notebook is installed here")
    result = magnus("execute_notebook", "analysis.ipynb", cwd=project)
    assert result.returncode == 2
    assert "pip install magnus-task-notebook" in result.stderr


def test_single_nodes_and_fan_walk_a_run_from_outside(project: Path) -> None:
    """What a container or Argo orchestrator does: each step and fan in its own process."""
    (project / "params.yaml").write_text("items: [1, 2]\n")
    each = {
        **map_of("cli_steps.hello"),
        "iterate_as": "name",
        "branch": dag("greet", {"greet": task("cli_steps.hello")}),
    }
    write_pipeline(project, {"first": task("cli_steps.hello", "each"), "each": each}, "first", "p.yaml")
    common = ["-c", "config.yaml", "-p", "params.yaml"]

    def ok(*args: str) -> None:
        result = magnus(*args, *common, cwd=project)
        assert result.returncode == 0, result.stderr

    ok("execute_single_node", "run-x", "first", "-f", "p.yaml")  # magnus 0.5.1's form
    ok("fan", "run-x", "each", "-f", "p.yaml", "--mode", "out")
    for item in (1, 2):
        variable = json.dumps({"name": item})
        ok("execute_single_node", "run-x", "p.yaml", "each.map_variable_placeholder.greet", "--map-variable", variable)
        ok(
            "execute_single_node",
            "run-x",
            "p.yaml",
            "each.map_variable_placeholder.success",
            "--map-variable",
            variable,
        )
    ok("fan", "run-x", "each", "-f", "p.yaml", "--mode", "in")
    ok("execute_single_node", "run-x", "p.yaml", "success")

    log = read_log(project, "run-x")
    assert log["status"] == "SUCCESS"
    assert log["steps"]["each"]["status"] == "SUCCESS"
    assert sorted(log["steps"]["each"]["branches"]) == ["each.1", "each.2"]
    assert log["steps"]["each"]["branches"]["each.2"]["steps"]["each.2.greet"]["status"] == "SUCCESS"


def test_fan_in_of_a_failed_branch_exits_1(project: Path) -> None:
    steps = {
        "par": {
            "type": "parallel",
            "next": "success",
            "branches": {
                "a": {
                    "start_at": "bad",
                    "steps": {"bad": {"type": "task", "command": "cli_steps.boom", "next": "success"}, **TERMINALS},
                }
            },
        },
        **TERMINALS,
    }
    (project / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "par", "steps": steps}}))
    assert magnus("fan", "r", "par", "-f", "p.yaml", "-m", "out", "-c", "config.yaml", cwd=project).returncode == 0
    assert magnus("execute_single_node", "r", "p.yaml", "par.a.bad", "-c", "config.yaml", cwd=project).returncode == 1
    assert magnus("execute_single_node", "r", "p.yaml", "par.a.fail", "-c", "config.yaml", cwd=project).returncode == 1
    result = magnus("fan", "r", "par", "-f", "p.yaml", "-m", "in", "-c", "config.yaml", cwd=project)
    assert result.returncode == 1 and "step 'par' of run 'r' ended FAIL" in result.stderr


def test_single_node_refuses_composites_and_unknown_steps(project: Path) -> None:
    steps = {
        "par": {"type": "parallel", "next": "success", "branches": {"a": {"start_at": "success", "steps": TERMINALS}}}
    }
    steps = {**steps, **TERMINALS}
    (project / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "par", "steps": steps}}))
    composite = magnus("execute_single_node", "r", "p.yaml", "par", cwd=project)
    assert composite.returncode == 2 and "magnus fan" in composite.stderr
    unknown = magnus("execute_single_node", "r", "p.yaml", "nope", cwd=project)
    assert unknown.returncode == 2 and "no step with internal name 'nope'" in unknown.stderr

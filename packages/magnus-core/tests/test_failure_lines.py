"""A failure is told once: the task's traceback (when its code raised), then one last line naming the
deepest step that failed (a map item's) and why; a parameter that does not fit is one line, once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from magnus import Map, Pipeline, Task
from magnus.testing.pipelines import map_of, task, write_pipeline
from magnus.testing.pipelines import run_magnus as magnus

STEPS = """
def explore(item: int, rate: int) -> dict:
    return {"x": item * rate}


def boom(item: int) -> None:
    if item == 3:
        raise ValueError(f"bad item {item}")
"""

NOT_AN_INT = (
    "explore: parameter 'rate' expects int, got \"fast\" (str): "
    "Input should be a valid integer, unable to parse string as an integer"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "failing_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"items": [1, 2, 3, 4], "rate": "fast"}))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def test_a_parameter_of_the_wrong_type_is_one_line_once_for_all_items(project: Path) -> None:
    write_pipeline(project, {"explore": map_of("failing_steps.explore")}, "explore")
    result = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r", cwd=project
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "The above exception" not in result.stderr, result.stderr
    assert result.stderr.count("expects int") == 1, result.stderr
    assert (
        f"Error: run 'r' ended FAIL at step 'explore.1.work': {NOT_AN_INT} (and 3 more steps failed the same way)"
        in result.stderr.splitlines()
    )


def test_a_task_that_raises_is_told_by_its_traceback_and_the_last_line_names_its_item(project: Path) -> None:
    write_pipeline(project, {"explore": map_of("failing_steps.boom")}, "explore")
    result = magnus(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r", cwd=project
    )
    assert result.returncode == 1
    assert result.stderr.count("Traceback (most recent call last)") == 1
    lines = result.stderr.splitlines()
    assert lines.count("ValueError: bad item 3") == 1  # the traceback's last line
    assert "Error: run 'r' ended FAIL at step 'explore.3.work': ValueError: bad item 3" in lines
    assert "  explore FAIL in " in result.stderr


def test_a_failing_step_is_not_told_three_times(project: Path) -> None:
    write_pipeline(project, {"one": task("failing_steps.boom")}, "one")
    (project / "three.yaml").write_text("item: 3\n")
    result = magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "three.yaml", cwd=project)
    assert result.returncode == 1
    assert result.stderr.count("bad item 3") == 2, result.stderr  # the traceback, and the last line
    assert next(line for line in result.stderr.splitlines() if line.startswith("  one FAIL in ")).endswith("s")


def test_the_sdk_tells_a_failure_as_the_cli_does(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    work = Task(name="work", command="failing_steps.explore")
    explore = Map(name="explore", iterate_on="items", iterate_as="item", branch=Pipeline(steps=[work]))
    run_log = Pipeline(steps=[explore]).execute(
        configuration_file="config.yaml", parameters_file="params.yaml", run_id="sdk"
    )
    assert run_log is not None and run_log.status == "FAIL"
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.count("expects int") == 1
    assert f"Error: run 'sdk' ended FAIL at step 'explore.1.work': {NOT_AN_INT}" in err

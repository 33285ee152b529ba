"""Less wiring, compatibly (YAML and SDK), and SDK runs that say what CLI runs say."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from magnus import Pipeline, Stub, Task
from magnus.entrypoints import load_pipeline
from magnus.errors import UserInputError
from magnus.testing.executor import outcome
from magnus.testing.pipelines import read_run_log as read_log
from magnus.testing.pipelines import run_magnus as magnus


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "wired_steps.py").write_text(
        textwrap.dedent(
            """
            def clean() -> dict:
                return {"rows": 10}

            def train(rows: int) -> dict:
                return {"model": f"trained on {rows}"}

            def breaks() -> None:
                raise ValueError("broken on purpose")
            """
        )
    )
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


# ---- YAML ------------------------------------------------------------------------------------------
def test_a_yaml_dag_may_leave_out_its_terminal_nodes_and_the_last_next(project: Path) -> None:
    pipeline = {
        "dag": {
            "start_at": "clean",
            "steps": {
                "clean": {"type": "task", "command": "wired_steps.clean", "next": "train"},
                "train": {"type": "task", "command": "wired_steps.train"},
            },
        }
    }
    (project / "short.yaml").write_text(yaml.safe_dump(pipeline))
    result = magnus("execute", "-f", "short.yaml", "-c", "config.yaml", "--run-id", "short", cwd=project)
    assert result.returncode == 0, result.stderr
    log = read_log(project, "short")
    assert [name for name in log["steps"]] == ["clean", "train", "success"]
    assert log["parameters"]["model"] == "trained on 10"


def test_a_dag_that_wires_itself_parses_as_before(project: Path) -> None:
    """magnus 0.5.1 pipelines: nothing added, the same dag hash."""
    wired = {
        "start_at": "clean",
        "steps": {
            "clean": {"type": "task", "command": "wired_steps.clean", "next": "done"},
            "done": {"type": "success"},
            "failed": {"type": "fail"},
        },
    }
    (project / "wired.yaml").write_text(yaml.safe_dump({"dag": wired}))
    parsed = load_pipeline("wired.yaml")
    assert sorted(parsed.graph.steps) == ["clean", "done", "failed"]
    assert parsed.definition == wired


# ---- the SDK ---------------------------------------------------------------------------------------
def test_steps_listed_without_wiring_run_in_their_order(project: Path) -> None:
    clean = Task(name="clean", command="wired_steps.clean")
    train = Task(name="train", command="wired_steps.train")
    pipeline = Pipeline(steps=[clean, train])
    assert pipeline.dag()["steps"]["clean"]["next"] == "train"
    assert pipeline.dag()["steps"]["train"]["next"] == "success"
    run_log = pipeline.execute(configuration_file="config.yaml", run_id="chained", quiet=True)
    assert run_log is not None and outcome(run_log) == {"clean": "SUCCESS", "train": "SUCCESS", "success": "SUCCESS"}


def test_two_steps_of_one_name_are_refused_naming_the_lines_that_made_them() -> None:
    first = Stub(name="clean")
    second = Stub(name="clean")
    with pytest.raises(UserInputError) as refused:
        Pipeline(steps=[first, second])
    line = first.defined_at.split(":")[1]
    assert str(refused.value) == (
        f"two steps are named 'clean' (made at test_less_wiring.py:{line} and test_less_wiring.py:{int(line) + 1}): "
        "the steps of a pipeline need names of their own"
    )


def test_a_step_left_unwired_among_wired_ones_is_refused_in_sdk_terms() -> None:
    a, b, c = Stub(name="a"), Stub(name="b"), Stub(name="c")
    a >> c
    with pytest.raises(UserInputError) as refused:
        Pipeline(steps=[a, b, c])
    assert str(refused.value) == (
        f"step 'b' (made at {b.defined_at}) leads nowhere: chain it (step >> next_step), "
        "or end the pipeline there (terminate_with_success=True)"
    )
    assert b.defined_at.startswith("test_less_wiring.py:")


def test_an_sdk_run_prints_what_a_cli_run_prints(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    clean = Task(name="clean", command="wired_steps.clean")
    breaks = Task(name="breaks", command="wired_steps.breaks")
    run_log = Pipeline(steps=[clean, breaks]).execute(configuration_file="config.yaml", run_id="sdk-failed")
    assert run_log is not None and run_log.status == "FAIL"
    err = capfd.readouterr().err
    assert "run sdk-failed started" in err and "  clean SUCCESS" in err and "  breaks FAIL" in err
    assert "Error: run 'sdk-failed' ended FAIL at step 'breaks': ValueError: broken on purpose" in err
    assert "run sdk-failed FAIL in " in err
    assert "resume with: execute(use_cached='sdk-failed') in test_less_wiring.py" in err

    Pipeline(steps=[Task(name="clean", command="wired_steps.clean")]).execute(
        configuration_file="config.yaml", run_id="sdk-quiet", quiet=True
    )
    assert capfd.readouterr().err == ""

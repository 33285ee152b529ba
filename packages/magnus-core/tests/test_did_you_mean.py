"""A misspelt name is refused with the name meant: plugin types, services, config keys, pipeline
fields, the steps a pipeline routes to and a mocked run patches.

The same one line from ``magnus execute`` (exit 2, nothing run) and from the SDK's ``execute``
(the error raised). Unknown run ids and step names of past runs: see ``test_past_runs.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from magnus import Pipeline, Task
from magnus.errors import UserInputError
from magnus.names import did_you_mean
from magnus.testing.pipelines import error_line, run_magnus

PIPELINE = """
dag:
  start_at: first
  steps:
    first: {type: task, command: typo_steps.first, next: success}
    success: {type: success}
    fail: {type: fail}
"""

CASES = {
    "plugin type": (
        "catalog:\n  type: file-sytem\n",
        "config.yaml: catalog.type: unknown catalog type 'file-sytem' (installed: ",
        "; did you mean 'file-system'?",
    ),
    "service": (
        "run_log_stor:\n  type: file-system\n",
        "config.yaml: run_log_stor: unknown service (allowed: executor, run_log_store, catalog, secrets, "
        "experiment_tracker, pickler)",
        "; did you mean 'run_log_store'?",
    ),
    "block key": (
        "run_log_store:\n  typ: file-system\n",
        "config.yaml: run_log_store.typ: unknown field (allowed: type, config)",
        "; did you mean 'type'?",
    ),
    "config key": (
        "run_log_store:\n  type: file-system\n  config:\n    log_foldr: logs\n",
        "config.yaml: run_log_store.config.log_foldr: unknown field (allowed: log_folder)",
        "; did you mean 'log_folder'?",
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAGNUS_CONFIG_FILE", raising=False)
    (tmp_path / "typo_steps.py").write_text("from pathlib import Path\n\n\ndef first():\n    Path('ran').touch()\n")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path


@pytest.mark.parametrize("config, start, end", CASES.values(), ids=list(CASES))
def test_cli_names_what_was_meant(project: Path, config: str, start: str, end: str) -> None:
    (project / "config.yaml").write_text(config)
    line = error_line(run_magnus("execute", "-c", "config.yaml", cwd=project, isolated=True), 2)
    assert line.startswith(f"Error: {start}") and line.endswith(end), line
    assert not (project / "ran").exists()


@pytest.mark.parametrize("config, start, end", CASES.values(), ids=list(CASES))
def test_sdk_names_what_was_meant(project: Path, config: str, start: str, end: str) -> None:
    (project / "config.yaml").write_text(config)
    with pytest.raises(UserInputError) as raised:
        Pipeline(steps=[Task(name="first", command="typo_steps.first", terminate_with_success=True)]).execute(
            configuration_file="config.yaml", quiet=True
        )
    message = str(raised.value)
    assert message.startswith(start) and message.endswith(end), message
    assert not (project / "ran").exists()


def test_a_misspelt_pipeline_field_names_the_field_meant(project: Path) -> None:
    (project / "pipeline.yaml").write_text(PIPELINE.replace("next: success", "nxt: success"))
    line = error_line(run_magnus("execute", cwd=project, isolated=True), 2)
    assert "dag.steps.first.nxt: unknown field (allowed: " in line and line.endswith("; did you mean 'next'?")


def test_a_misspelt_next_step_names_the_step_meant(project: Path) -> None:
    (project / "pipeline.yaml").write_text(PIPELINE.replace("next: success", "next: sucess"))
    line = error_line(run_magnus("execute", cwd=project, isolated=True), 2)
    assert line == (
        "Error: pipeline.yaml: dag.steps.first.next: 'sucess' is not a step (known: first, success, fail); "
        "did you mean 'success'?"
    )
    (project / "pipeline.yaml").write_text(PIPELINE.replace("start_at: first", "start_at: frist"))
    line = error_line(run_magnus("execute", cwd=project, isolated=True), 2)
    assert "dag.start_at: 'frist' is not a step (known: first, success, fail); did you mean 'first'?" in line


def test_a_misspelt_patched_step_names_the_task_meant_in_cli_and_sdk(project: Path) -> None:
    (project / "config.yaml").write_text("executor:\n  type: mocked\n  config:\n    patches:\n      frist: {}\n")
    expected = "executor.config.patches.frist: not a task of the pipeline (tasks: first); did you mean 'first'?"
    line = error_line(run_magnus("execute", "-c", "config.yaml", cwd=project, isolated=True), 2)
    assert line.endswith(expected), line
    with pytest.raises(UserInputError) as raised:
        Pipeline(steps=[Task(name="first", command="typo_steps.first", terminate_with_success=True)]).execute(
            configuration_file="config.yaml", quiet=True
        )
    assert str(raised.value).endswith(expected)


def test_nothing_close_suggests_nothing() -> None:
    assert did_you_mean("zzz", ["file-system", "do-nothing"]) == ""
    assert did_you_mean("file-sytem", ["file-system", "do-nothing"]) == "; did you mean 'file-system'?"
    assert did_you_mean("a\x1b[31m", ["a\x1b[31mb"]) == "; did you mean 'a\\x1b[31mb'?"

"""The executor against the magnus.testing contract suite of its kind, plus its own tests.

The suite is given the executor's class (``make_executor``), so it runs without this package
being installed: the tests import it from ``src/`` (``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from magnus import defaults
from magnus.config import create_service
from magnus.entrypoints import load_pipeline
from magnus.errors import ConfigurationError
from magnus.plugins import is_installed
from magnus.runtime.services import RunOptions
from magnus.testing import ExecutorContract, run_with_executor
from magnus.testing.executor import ExecutorFactory

from __PLUGIN_IMPORT__.plugin import __PLUGIN_CLASS__

ONE_STUB = {
    "start_at": "only",
    "steps": {"only": {"type": "stub", "next": "success"}, "success": {"type": "success"}, "fail": {"type": "fail"}},
}


def shared_store(folder: Path) -> Dict[str, Any]:
    """Steps run in other processes: the run log store must be one they all write."""
    return {"run_log_store": {"type": "file-system", "config": {"log_folder": str(folder / "logs")}}}


class TestContract(ExecutorContract):
    @pytest.fixture
    def make_executor(self) -> ExecutorFactory:
        return __PLUGIN_CLASS__

    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return shared_store(tmp_path)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": ONE_STUB}))
    return tmp_path


def test_a_store_in_one_process_is_refused(project: Path) -> None:
    options = RunOptions(pipeline_file="pipeline.yaml")  # no configuration: the store is in memory
    with pytest.raises(ConfigurationError, match="keeps its state in one process"):
        run_with_executor(__PLUGIN_CLASS__(), load_pipeline("pipeline.yaml"), options)


def test_a_step_process_that_dies_fails_the_step(project: Path) -> None:
    (project / "config.yaml").write_text(yaml.safe_dump({"executor": {"type": "local"}, **shared_store(project)}))
    options = RunOptions(pipeline_file="pipeline.yaml", configuration_file="config.yaml", run_id="dies-1")
    # Python cannot start without its standard library: the step's process dies at once.
    executor = __PLUGIN_CLASS__(environment={"PYTHONHOME": str(project / "nowhere")})
    run_log = run_with_executor(executor, load_pipeline("pipeline.yaml"), options)
    assert run_log is not None and run_log.status == defaults.FAIL
    assert "before recording the step" in run_log.steps["only"].message


@pytest.mark.skipif(not is_installed("executor", "__PLUGIN_NAME__"), reason="not installed: pip install -e .")
def test_magnus_finds_the_plugin_by_its_entry_point() -> None:
    assert isinstance(create_service("executor", {"type": "__PLUGIN_NAME__"}), __PLUGIN_CLASS__)

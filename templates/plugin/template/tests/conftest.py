"""What the tests share: a pipeline run as ``magnus execute`` runs it, in a project folder of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import yaml
from magnus.datastore.models import RunLog
from magnus.entrypoints import execute

# Runs a dag (the mapping under ``dag:``) with a configuration (the config file's mapping).
PipelineRun = Callable[..., RunLog]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, the working folder of the test."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def run_pipeline(project: Path) -> PipelineRun:
    """``run_pipeline(dag, configuration, run_id=..., parameters=...)``: the run's log."""

    def run(
        dag: Dict[str, Any],
        configuration: Dict[str, Any],
        run_id: str = "run-1",
        parameters: Dict[str, Any] | None = None,
    ) -> RunLog:
        (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag}))
        (project / "config.yaml").write_text(yaml.safe_dump(configuration))
        (project / "parameters.yaml").write_text(yaml.safe_dump(parameters or {}))
        run_log = execute(
            "pipeline.yaml", configuration_file="config.yaml", parameters_file="parameters.yaml", run_id=run_id
        )
        assert run_log is not None
        return run_log

    return run


def one_step(step: Dict[str, Any]) -> Dict[str, Any]:
    """A dag of ``step`` (named ``step``) followed by success."""
    return {
        "start_at": "step",
        "steps": {"step": {**step, "next": "success"}, "success": {"type": "success"}, "fail": {"type": "fail"}},
    }

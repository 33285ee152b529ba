"""A process doing several units of a run walked elsewhere (a Ray worker) reads the run once, and
names where it ran them."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import yaml

from magnus import defaults
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.errors import UserInputError
from magnus.launched import execute_request, request_services
from magnus.runtime.request import RunStep
from magnus.runtime.services import RunOptions


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunOptions:
    monkeypatch.chdir(tmp_path)
    steps = "def one() -> dict:\n    return {'x': 1}\n\n\ndef two(x: int) -> None:\n    pass\n"
    (tmp_path / "where_steps.py").write_text(steps)
    dag = {
        "start_at": "one",
        "steps": {
            "one": {"type": "task", "command": "where_steps.one", "next": "two"},
            "two": {"type": "task", "command": "where_steps.two", "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag}))
    config = {"run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return RunOptions(run_id="where-1", pipeline_file="pipeline.yaml", configuration_file="config.yaml")


def test_steps_run_with_the_services_read_once_name_where_they_ran(run: RunOptions) -> None:
    services = dataclasses.replace(request_services(run), runs_on={"engine_node": "node-7"})
    assert execute_request(RunStep(run=run, step="one"), services) == defaults.SUCCESS
    assert execute_request(RunStep(run=run, step="two"), services) == defaults.SUCCESS  # sees what one set
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("where-1")
    for step in ("one", "two"):
        identity = run_log.steps[step].code_identities[0].model_dump()
        assert identity["engine_node"] == "node-7" and identity["code_identifier_type"] == "git"


def test_steps_of_a_process_that_names_no_place_keep_the_code_identity_alone(run: RunOptions) -> None:
    assert execute_request(RunStep(run=run, step="one")) == defaults.SUCCESS
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("where-1")
    assert "engine_node" not in run_log.steps["one"].code_identities[0].model_dump()


def test_then_end_records_the_run_s_success_in_the_last_step_s_process(run: RunOptions) -> None:
    """One job for a last step and the end after it: the run ends SUCCESS as when the end ran apart."""
    assert execute_request(RunStep(run=run, step="one")) == defaults.SUCCESS
    assert execute_request(RunStep(run=run, step="two", then_end=True)) == defaults.SUCCESS
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("where-1")
    assert run_log.status == defaults.SUCCESS
    assert list(run_log.steps) == ["one", "two", "success"]
    assert run_log.steps["success"].status == defaults.SUCCESS


def test_then_end_leaves_the_end_to_the_failure_route_when_the_step_failed(
    run: RunOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "where_steps", raising=False)  # an earlier test imported it as it was
    Path("where_steps.py").write_text(
        "def one() -> dict:\n    return {'x': 1}\n\n\ndef two(x: int) -> None:\n    raise ValueError(x)\n"
    )
    assert execute_request(RunStep(run=run, step="one")) == defaults.SUCCESS
    assert execute_request(RunStep(run=run, step="two", then_end=True)) == defaults.FAIL
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("where-1")
    assert run_log.status == defaults.PROCESSING  # the engine routes to the fail node's own job
    assert "success" not in run_log.steps


def test_then_end_is_refused_before_the_step_runs_when_no_success_node_follows(run: RunOptions) -> None:
    with pytest.raises(UserInputError, match="--then-end: step 'one' is followed by 'two', not its dag's success node"):
        execute_request(RunStep(run=run, step="one", then_end=True))
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("where-1")
    assert "one" not in run_log.steps

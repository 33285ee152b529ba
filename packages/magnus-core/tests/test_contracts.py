"""Core's built-ins against the magnus.testing contract suites."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Dict

import pytest
import yaml

from magnus import defaults
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.buffered import BufferedRunLogStore
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.entrypoints import load_pipeline
from magnus.executor.local import LocalExecutor
from magnus.pickler import BasePickler, NativePickler
from magnus.runtime.services import RunOptions
from magnus.testing import (
    ExecutorContract,
    ExperimentTrackerContract,
    PicklerContract,
    RunLogStoreContract,
    run_with_executor,
)
from magnus.testing.executor import PIPELINES, ExecutorFactory
from magnus.testing.run_log_store import StoreFactory
from magnus.tracker import BaseExperimentTracker, DoNothingTracker


class TestBufferedRunLogStore(RunLogStoreContract):
    persistent = False

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return BufferedRunLogStore


class TestFileSystemRunLogStore(RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: FileSystemRunLogStore(log_folder=str(tmp_path / "logs"))

    def spoil_step(self, store: BaseRunLogStore, run_id: str, internal_name: str) -> None:
        """Cut the journal line recording the step in half (the lines after it stay whole)."""
        assert isinstance(store, FileSystemRunLogStore)
        journal = store.journal_path(run_id)
        marker = f'"internal_name":"{internal_name}"'.encode()
        lines = journal.read_bytes().splitlines(keepends=True)
        journal.write_bytes(b"".join(line[: len(line) // 2] + b"\n" if marker in line else line for line in lines))


class TestDoNothingTracker(ExperimentTrackerContract):
    keeps_nothing = True

    @pytest.fixture
    def tracker(self) -> BaseExperimentTracker:
        return DoNothingTracker()


class TestNativePickler(PicklerContract):
    @pytest.fixture
    def pickler(self) -> BasePickler:
        return NativePickler()


class TestLocalExecutorWithFileSystemStore(ExecutorContract):
    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return {
            "executor": {"type": "local"},
            "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "logs")}},
        }


class TestLocalExecutorWithBufferedStore(ExecutorContract):
    resumable = False

    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return {"executor": {"type": "local"}}


class TestLocalExecutorWithWorkers(ExecutorContract):
    """Branches and map iterations in two forked worker processes, writing the journal at once."""

    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return {
            "executor": {"type": "local", "config": {"max_workers": 2}},
            "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "logs")}},
        }


class TestLocalExecutorGivenAsAClass(ExecutorContract):
    """The executor built by its class, not loaded by its entry point; the default services."""

    @pytest.fixture
    def make_executor(self) -> ExecutorFactory:
        return LocalExecutor


class TestLocalExecutorGivenByAFactory(ExecutorContract):
    """Workers in processes of their own, with the services a configuration gives."""

    @pytest.fixture
    def make_executor(self) -> ExecutorFactory:
        return lambda: LocalExecutor(max_workers=2)

    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        return {"run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "logs")}}}


class UnregisteredExecutor(LocalExecutor):
    """An executor no entry point names: only a factory can give it."""

    service_name: ClassVar[str] = "unregistered"


def test_run_with_an_executor_that_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["shell"]}))
    (tmp_path / "parameters.yaml").write_text("x: 1\n")
    options = RunOptions(pipeline_file="pipeline.yaml", parameters_file="parameters.yaml", run_id="unregistered-1")
    executor = UnregisteredExecutor()
    run_log = run_with_executor(executor, load_pipeline("pipeline.yaml"), options)
    assert run_log is not None and run_log.status == defaults.SUCCESS
    assert run_log.run_config["executor"] == executor.get_summary()
    assert run_log.parameters["from_shell"] == "shell says hi"


def test_the_step_processes_of_a_given_executor_load_local() -> None:
    contract = ExecutorContract()
    services = {"run_log_store": {"type": "file-system"}}
    assert contract.configuration_file(services, given_executor=True) == {"executor": {"type": "local"}, **services}
    named = {"executor": {"type": "mocked"}, **services}
    assert contract.configuration_file(named, given_executor=True) == named
    assert contract.configuration_file(services, given_executor=False) == services

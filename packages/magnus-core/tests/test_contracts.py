"""Core's built-ins against the magnus.testing contract suites."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from magnus.datastore.buffered import BufferedRunLogStore
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.testing import ExecutorContract, ExperimentTrackerContract, RunLogStoreContract
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


class TestDoNothingTracker(ExperimentTrackerContract):
    @pytest.fixture
    def tracker(self) -> BaseExperimentTracker:
        return DoNothingTracker()


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

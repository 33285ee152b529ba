"""The executor contract's reference pipelines, every step a job of a real SLURM cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from magnus.testing import ExecutorContract
from magnus_executor_slurm.cluster import LocalCluster

pytestmark = pytest.mark.service


class TestOnSlurm(ExecutorContract):
    """linear, shell, parallel, map, on_failure, a failing step and a resume, each step a SLURM job."""

    @pytest.fixture
    def configuration(self, cluster: LocalCluster, tmp_path: Path) -> Dict[str, Any]:
        return {
            "executor": {"type": "slurm", "config": {"poll_interval": 0.5, "partition": cluster.partition}},
            "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
        }

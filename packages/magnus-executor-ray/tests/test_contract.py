"""The executor contract's reference pipelines, every step a Ray task of a real two-node cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from magnus.testing import ExecutorContract
from magnus_executor_ray.cluster import LocalCluster

pytestmark = pytest.mark.service


class TestOnRay(ExecutorContract):
    """linear, shell, parallel, map, on_failure, a failing step and a resume, each step a Ray task."""

    @pytest.fixture
    def configuration(self, cluster: LocalCluster, tmp_path: Path) -> Dict[str, Any]:
        return {
            "executor": {
                "type": "ray",
                "config": {"address": cluster.address, "shared_filesystem": True, "num_cpus": 0.5},
            },
            "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
        }

"""The reference pipelines with every first-party service plugin at once (all packages installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from magnus.testing import ExecutorContract


class TestEverythingTogether(ExecutorContract):
    """Workers, chunked-fs run log, file-system catalog and dotenv secrets in one configuration."""

    @pytest.fixture
    def configuration(self, tmp_path: Path) -> Dict[str, Any]:
        (tmp_path / "project").mkdir(exist_ok=True)
        (tmp_path / "project" / ".env").write_text("TOKEN=tr0ub4dor-and-3-horses\n")
        return {
            "executor": {"type": "local", "config": {"max_workers": 2}},
            "run_log_store": {"type": "chunked-fs", "config": {"log_folder": str(tmp_path / "logs")}},
            "catalog": {"type": "file-system", "config": {"catalog_location": str(tmp_path / "catalog")}},
            "secrets": {"type": "dotenv", "config": {"location": ".env"}},
        }

    def test_execution_logs_reach_the_catalog(self, project: Path, configuration: Dict[str, Any]) -> None:
        run_log = self.run(project, configuration, "map", "catalogued")
        step = run_log.steps["each"].branches["each.2"].steps["each.2.work"]
        assert [entry.name for entry in step.data_catalog] == ["work.execution.log_2"]
        assert (
            Path(configuration["catalog"]["config"]["catalog_location"]) / "catalogued" / "work.execution.log_2"
        ).is_file()

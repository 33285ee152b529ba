"""An SQLite run log in the project folder with the file-system catalog: two plugins together.

Puts skip the run log store's state; for an SQLite database that is the database's files, not
the folder holding them, which is the project's (every put failed with "nothing matches").
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from magnus.entrypoints import execute
from magnus.testing.pipelines import task, write_pipeline


def test_puts_from_the_project_folder_skip_only_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    config = {
        "run_log_store": {"type": "db", "config": {"connection_string": "sqlite:///runs.db"}},
        "catalog": {"type": "file-system", "config": {"compute_data_folder": "."}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    steps = {"keep": task("true", command_type="shell", catalog={"put": ["*"]})}
    write_pipeline(tmp_path, steps, "keep")
    run_log = execute("pipeline.yaml", "config.yaml", run_id="sqlite-put")
    assert run_log is not None and run_log.status == "SUCCESS", run_log and run_log.steps["keep"].message
    put = {entry.name for entry in run_log.steps["keep"].data_catalog if entry.stage == "put"}
    assert {"rows.csv", "pipeline.yaml", "config.yaml"} <= put
    assert not [name for name in put if name.startswith("runs.db")]
    assert (tmp_path / ".catalog" / "sqlite-put" / "rows.csv").is_file()

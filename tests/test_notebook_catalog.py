"""The notebook task with the file-system catalog: two plugins together, so in the cross-package suite."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from magnus.entrypoints import execute


def test_the_executed_notebook_is_in_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("accuracy = 0.5"))
    nbformat.write(notebook, tmp_path / "train.ipynb")
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"run_log_store": {"type": "file-system"}, "catalog": {"type": "file-system"}})
    )
    step = {"type": "task", "command_type": "notebook", "command": "train.ipynb", "next": "success"}
    dag = {"start_at": "train", "steps": {"train": step, "success": {"type": "success"}, "fail": {"type": "fail"}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"dag": dag}))
    run_log = execute("p.yaml", "config.yaml", run_id="nb-catalog")
    assert run_log is not None and run_log.status == "SUCCESS", run_log and run_log.steps["train"].message
    assert "train_out.ipynb" in {entry.name for entry in run_log.steps["train"].data_catalog}
    assert (tmp_path / ".catalog" / "nb-catalog" / "train_out.ipynb").is_file()

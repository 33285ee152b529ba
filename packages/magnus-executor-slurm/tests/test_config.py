"""The executor's configuration, checked when it is read: no cluster needed.

Before: an ``environment:`` name was pasted raw into every job script (``export NAME=...``), so
a name holding ``;`` ran shell code in each job, and an invalid name broke every job at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from magnus.config import create_service
from magnus.errors import ConfigurationError
from magnus.testing.pipelines import task, write_pipeline
from magnus_executor_slurm.script import job_script

NAME_RULE = "is not an environment variable name (letters, digits and '_', not starting with a digit)"


def test_a_name_holding_shell_code_is_refused_in_one_line_before_any_job(tmp_path: Path) -> None:
    hostile = "A=1; touch pwned; B"
    config = {
        "executor": {"type": "slurm", "config": {"environment": {hostile: "x"}}},
        "run_log_store": {"type": "file-system"},
    }
    (tmp_path / "slurm.yaml").write_text(yaml.safe_dump(config))
    write_pipeline(tmp_path, {"s": task("touch ran", command_type="shell")}, "s", name="p.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "p.yaml", "-c", "slurm.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: slurm.yaml: executor.config.environment: {hostile!r} {NAME_RULE}"
    ]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "ran").exists()
    assert not (tmp_path / ".magnus").exists(), "no job script was written"


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "", "A\nB", "Ä", "$(id)"])
def test_names_that_are_not_posix_variable_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        create_service("executor", {"type": "slurm", "config": {"environment": {name: "x"}}}, "c.yaml")
    assert str(refused.value) == f"c.yaml: executor.config.environment: {name!r} {NAME_RULE}"


def test_a_bad_name_in_an_override_names_the_override() -> None:
    config = {"overrides": {"gpu": {"environment": {"OK_1": "x", "not ok": "y"}}}}
    with pytest.raises(ConfigurationError) as refused:
        create_service("executor", {"type": "slurm", "config": config}, "c.yaml")
    assert str(refused.value) == f"c.yaml: executor.config.overrides.gpu.environment: 'not ok' {NAME_RULE}"


def test_good_names_are_kept() -> None:
    environment = {"_A": "1", "OMP_NUM_THREADS": "4", "lower_case9": ""}
    executor = create_service("executor", {"type": "slurm", "config": {"environment": environment}}, "c.yaml")
    assert executor.environment == environment  # type: ignore[attr-defined]


def test_values_reach_the_job_as_they_are_and_never_run(tmp_path: Path) -> None:
    """Values are quoted in the script: quotes, ``$(...)``, ``;`` and newlines stay text."""
    values = {"QUOTED": 'it\'s "$(touch pwned)"; `touch pwned`\nnext line $HOME \\ end'}
    script = job_script(
        [["bash", "-c", 'printf %s "$QUOTED" > seen']],
        folder=tmp_path,
        exit_folder=tmp_path,
        prologue=[],
        environment=values,
        title="test",
    )
    (tmp_path / "job.sh").write_text(script)
    done = subprocess.run(["bash", str(tmp_path / "job.sh")], env={**os.environ, "SLURM_JOB_ID": "7"}, timeout=30)
    assert done.returncode == 0
    assert (tmp_path / "seen").read_text() == values["QUOTED"]
    assert not (tmp_path / "pwned").exists() and (tmp_path / "7.exit").read_text().strip() == "0"

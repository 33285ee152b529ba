"""``magnus init``: a project of your own that runs as created, in real processes.

``magnus init demo && cd demo && magnus execute`` succeeds; the commands it prints run as
printed (a run kept in ``.run_log_store/``, listed and shown without ``-c``, read back from
Python); a folder holding anything is refused in one line unless ``--force``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import magnus
from magnus.scaffold import NEXT_COMMANDS
from magnus.testing.pipelines import error_line, run_magnus

pytestmark = pytest.mark.slow

FILES = ["pipeline.yaml", "steps.py", "parameters.yaml", "config.yaml", ".gitignore", "README.md"]


def test_init_writes_a_project_and_says_what_next(tmp_path: Path) -> None:
    result = run_magnus("init", "demo", cwd=tmp_path, isolated=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"created in demo: {', '.join(FILES)}",
        "next:",
        "  cd demo",
        *(f"  {command}" for command in NEXT_COMMANDS),
    ]
    assert sorted(path.name for path in (tmp_path / "demo").iterdir()) == sorted(FILES)
    readme = (tmp_path / "demo" / "README.md").read_text()
    assert all(command in readme for command in NEXT_COMMANDS)


def test_the_project_runs_as_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_magnus("init", "demo", cwd=tmp_path, isolated=True).returncode == 0
    demo = tmp_path / "demo"
    bare = run_magnus("execute", cwd=demo, isolated=True)
    assert bare.returncode == 0, bare.stderr
    assert "trained on a total of 4950 at learning rate 0.1" in bare.stdout
    run, listed = (run_magnus(*command.split()[1:], cwd=demo, isolated=True) for command in NEXT_COMMANDS[:2])
    assert run.returncode == 0 and listed.returncode == 0, run.stderr + listed.stderr
    run_id = listed.stdout.splitlines()[1].split()[0]
    shown = run_magnus(*NEXT_COMMANDS[2].replace("RUN_ID", run_id).split()[1:], cwd=demo, isolated=True)
    assert shown.returncode == 0 and shown.stdout.startswith(f"run {run_id}  SUCCESS"), shown.stderr
    monkeypatch.chdir(demo)
    monkeypatch.delenv("MAGNUS_CONFIG_FILE", raising=False)
    past = magnus.runs()[0]
    assert past.parameters == {"rows": 1000, "learning_rate": 0.01, "total": 499500}
    assert list(past.metrics) == ["score"]


def test_init_here_writes_into_the_working_folder(tmp_path: Path) -> None:
    result = run_magnus("init", cwd=tmp_path, isolated=True)
    assert result.returncode == 0 and "cd " not in result.stdout, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FILES)


def test_a_folder_holding_anything_is_refused_unless_forced(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "pipeline.yaml").write_text("mine\n")
    line = error_line(run_magnus("init", "demo", cwd=tmp_path, isolated=True), 2)
    assert line == (
        "Error: demo: not empty (holds pipeline.yaml): magnus init writes a new project into an empty or new "
        "folder; pass --force to write its files there, replacing files of the same names"
    )
    assert (demo / "pipeline.yaml").read_text() == "mine\n" and len(list(demo.iterdir())) == 1
    forced = run_magnus("init", "demo", "--force", cwd=tmp_path, isolated=True)
    assert forced.returncode == 0, forced.stderr
    assert (demo / "pipeline.yaml").read_text().startswith("# The pipeline")


def test_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "demo").write_text("")
    assert error_line(run_magnus("init", "demo", cwd=tmp_path, isolated=True), 2) == (
        "Error: demo: is a file, not a folder"
    )


@pytest.mark.skipif(
    not os.environ.get("MAGNUS_TEST_FRESH_VENV"), reason="installs from a package index: MAGNUS_TEST_FRESH_VENV=1"
)
def test_init_runs_in_a_fresh_venv_with_core_alone(tmp_path: Path) -> None:
    """Installs magnus-core alone (from this checkout) in a new virtualenv: no plugin, no catalog."""
    core = Path(__file__).resolve().parents[1]
    venv.create(tmp_path / "venv", with_pip=True)
    bin_folder = tmp_path / "venv" / ("Scripts" if sys.platform == "win32" else "bin")
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MAGNUS_CONFIG_FILE")}
    pip = [str(bin_folder / "python"), "-m", "pip", "install", "-q", str(core)]
    subprocess.run(pip, check=True, env=environment, timeout=600)
    magnus_bin = str(bin_folder / "magnus")
    for arguments, folder in ((["init", "demo"], tmp_path), (["execute"], tmp_path / "demo")):
        done = subprocess.run([magnus_bin, *arguments], cwd=folder, env=environment, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    config = (tmp_path / "demo" / "config.yaml").read_text()
    assert "# catalog:" in config and "pip install magnus-catalog-fs" in config
    kept = subprocess.run(
        [magnus_bin, "execute", "-c", "config.yaml", "-p", "parameters.yaml"],
        cwd=tmp_path / "demo",
        env=environment,
        capture_output=True,
        text=True,
    )
    assert kept.returncode == 0, kept.stderr
    assert shutil.which("magnus", path=str(bin_folder))

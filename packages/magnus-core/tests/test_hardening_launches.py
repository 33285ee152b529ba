"""A launch the run's walk would never make is refused before any user code runs, and loses nothing.

Engines launch a run's units with ``magnus execute_single_node`` / ``execute_branch``; a stray
launch (a map value the map never had, a run that ended, a step that already succeeded) must be
refused in one line (exit 2) before the step's code runs, and leave the run log as readable as
before.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from magnus import defaults
from magnus.testing.pipelines import dag, map_of, run_magnus, write_pipeline

STEPS = """
from pathlib import Path


def work(item: int) -> None:
    Path(f"ran-{item}").write_text("")
"""

STEP = f"m.{defaults.MAP_PLACEHOLDER}.work"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "fs.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "params.yaml").write_text("items: [1, 2]\n")
    write_pipeline(tmp_path, {"m": map_of("steps.work")}, "m")
    return tmp_path


def magnus(project: Path, *args: str) -> "tuple[int, str]":
    result = run_magnus(*args, "-c", "fs.yaml", cwd=project, isolated=True)
    return result.returncode, result.stderr


def fanned_out(project: Path, run_id: str) -> None:
    """The run as an engine leaves it after the map's fan-out: branches m.1 and m.2 in progress."""
    code, errors = magnus(project, "fan", run_id, "m", "-f", "pipeline.yaml", "-m", "out", "-p", "params.yaml")
    assert code == 0, errors


def still_readable(project: Path, run_id: str) -> None:
    for command in (("runs", "show", run_id), ("runs", "list")):
        code, errors = magnus(project, *command)
        assert code == 0, errors


@pytest.mark.parametrize(
    ("map_variable", "refusal"),
    [
        ('{"item": 99}', "Error: run 'going' has no branch 'm.99': its step did not fan out to it"),
        ("", f"Error: --map-variable: step '{STEP}' is inside 1 map(s), got 0 map value(s)"),
        ('{"item": 1, "other": 2}', f"Error: --map-variable: step '{STEP}' is inside 1 map(s), got 2 map value(s)"),
    ],
    ids=["a-value-the-map-never-had", "no-map-value", "too-many-map-values"],
)
def test_a_step_at_a_position_the_map_never_had(project: Path, map_variable: str, refusal: str) -> None:
    fanned_out(project, "going")
    position = ["--map-variable", map_variable] if map_variable else []
    code, errors = magnus(project, "execute_single_node", "going", "pipeline.yaml", STEP, *position)
    assert (code, errors.strip()) == (2, refusal)
    assert not list(project.glob("ran-*"))  # no user code ran
    still_readable(project, "going")


def test_a_step_that_already_succeeded(project: Path) -> None:
    fanned_out(project, "going")
    launch = ("execute_single_node", "going", "pipeline.yaml", STEP, "--map-variable", '{"item": 1}')
    assert magnus(project, *launch)[0] == 0
    (project / "ran-1").unlink()
    code, errors = magnus(project, *launch)
    assert (code, errors.strip()) == (2, "Error: step 'm.1.work' of run 'going' already succeeded")
    assert not (project / "ran-1").exists()


def test_a_run_that_ended(project: Path) -> None:
    code, errors = magnus(project, "execute", "-f", "pipeline.yaml", "-p", "params.yaml", "--run-id", "ended", "-q")
    assert code == 0, errors
    for ran in project.glob("ran-*"):
        ran.unlink()
    code, errors = magnus(
        project, "execute_single_node", "ended", "pipeline.yaml", STEP, "--map-variable", '{"item": 1}'
    )
    assert (code, errors.strip()) == (2, "Error: run 'ended' has ended SUCCESS: its steps are not launched again")
    assert not list(project.glob("ran-*"))
    still_readable(project, "ended")


def test_a_branch_walked_alone_at_a_position_the_map_never_had(project: Path) -> None:
    fanned_out(project, "going")
    branch = f"m.{defaults.MAP_PLACEHOLDER}"
    code, errors = magnus(
        project, "execute_branch", "going", "pipeline.yaml", "m", branch, "--map-variable", '{"item": 7}'
    )
    assert (code, errors.strip()) == (2, "Error: run 'going' has no branch 'm.7': its step did not fan out to it")
    assert not list(project.glob("ran-*"))
    still_readable(project, "going")


def test_a_step_outside_any_map_takes_no_map_value(project: Path) -> None:
    parallel = {
        "type": "parallel",
        "branches": {"a": dag("work", {"work": {"type": "stub", "next": "success"}})},
        "next": "success",
    }
    write_pipeline(project, {"par": parallel}, "par", name="parallel.yaml")
    launch = ("execute_single_node", "p", "parallel.yaml", "par.a.work", "--map-variable", '{"item": 1}')
    code, errors = magnus(project, *launch)
    assert (code, errors.strip()) == (
        2,
        "Error: --map-variable: step 'par.a.work' is inside 0 map(s), got 1 map value(s)",
    )

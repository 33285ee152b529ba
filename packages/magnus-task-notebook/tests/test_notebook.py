"""Notebook tasks executing real notebooks (made with nbformat here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, List

import nbformat
import pytest
import yaml

from magnus import entrypoints
from magnus.entrypoints import execute
from magnus.plugins import is_installed
from magnus.secrets import BaseSecrets

TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}


def notebook(path: Path, cells: List[str], parameters_cell: str = "") -> None:
    nb = nbformat.v4.new_notebook()
    if parameters_cell:
        nb.cells.append(nbformat.v4.new_code_cell(parameters_cell, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    (tmp_path / "params.yaml").write_text("rate: 0.5\nitems: [1, 2]\nname: magnus\n")
    notebook(
        tmp_path / "train.ipynb",
        ["print(f'training {name} at {rate}')", "accuracy = rate * 2\nlabel = name.upper()"],
        parameters_cell="rate = 0.1\nname = 'default'",
    )
    notebook(tmp_path / "item.ipynb", ["print('item', item)", "squared = item * item\nresult = {'item': item}"])
    notebook(tmp_path / "broken.ipynb", ["x = 1", "raise ValueError('bad data in cell two')"])
    return tmp_path


def run(project: Path, steps: dict[str, Any], start: str, run_id: str) -> Any:
    (project / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": start, "steps": {**steps, **TERMINALS}}}))
    return execute("p.yaml", "config.yaml", "params.yaml", run_id=run_id)


def test_parameters_flow_in_and_out(project: Path) -> None:
    step = {
        "type": "task",
        "command_type": "notebook",
        "command": "train.ipynb",
        "returns": ["accuracy", "label"],
        "next": "success",
    }
    run_log = run(project, {"train": step}, "train", "nb-1")
    assert run_log.status == "SUCCESS", run_log.steps["train"].message
    assert run_log.parameters["accuracy"] == 1.0 and run_log.parameters["label"] == "MAGNUS"
    executed = nbformat.read(project / "train_out.ipynb", as_version=4)
    assert "injected-parameters" in executed.cells[1].metadata["tags"]
    assert any("training magnus at 0.5" in output.get("text", "") for output in executed.cells[2].outputs)


ENVIRONMENT_CELL = """
import json, os
x_seen = json.loads(os.environ["MAGNUS_PRM_x"])
os.environ["MAGNUS_PRM_from_notebook"] = json.dumps({"seen": x_seen, "raw": os.environ["MAGNUS_PRM_x"]})
"""


def test_parameters_in_the_environment_as_in_magnus_0_5_1(project: Path) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump({"x": {"rate": 0.5, "names": ["a", "b"]}}))
    notebook(project / "environment.ipynb", [ENVIRONMENT_CELL])
    step = {"type": "task", "command_type": "notebook", "command": "environment.ipynb", "next": "success"}
    run_log = run(project, {"env": step}, "env", "nb-env")
    assert run_log.status == "SUCCESS", run_log.steps["env"].message

    x = {"rate": 0.5, "names": ["a", "b"]}
    stored = json.loads((project / ".run_log_store" / "nb-env.json").read_text())["parameters"]["from_notebook"]
    assert stored["seen"] == x  # the notebook decoded the JSON it found in MAGNUS_PRM_x
    assert isinstance(stored["raw"], str) and json.loads(stored["raw"]) == x  # JSON text, not a repr
    assert run_log.parameters["from_notebook"] == stored
    assert "MAGNUS_PRM_from_notebook" not in os.environ and "MAGNUS_PRM_x" not in os.environ


def test_a_notebook_task_outside_a_step_skips_the_catalog(project: Path) -> None:
    from magnus_task_notebook.task import NotebookTaskType

    task = NotebookTaskType(command="train.ipynb", returns=["accuracy"])
    assert task.execute_command({"rate": 0.25, "name": "direct"}) == {"accuracy": 0.5}
    assert (project / "train_out.ipynb").is_file()


def test_tagged_output_cells_as_in_magnus_0_5_1(project: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("rate = 0.1", metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell("print({'doubled': rate * 2})", metadata={"tags": ["magnus_output"]}))
    nbformat.write(nb, project / "tagged.ipynb")
    step = {"type": "task", "command_type": "notebook", "command": "tagged.ipynb", "next": "success"}
    run_log = run(project, {"tagged": step}, "tagged", "nb-tagged")
    assert run_log.status == "SUCCESS", run_log.steps["tagged"].message
    assert run_log.parameters["doubled"] == 1.0


def test_a_failing_cell_fails_the_step_with_its_number(project: Path) -> None:
    step = {"type": "task", "command_type": "notebook", "command": "broken.ipynb", "next": "success"}
    run_log = run(project, {"broken": step}, "broken", "nb-2")
    assert run_log.status == "FAIL"
    assert run_log.steps["broken"].message == (
        "TaskFailedError: cell 2 failed at line 1 (raise ValueError('bad data in cell two')): "
        "ValueError: bad data in cell two"
    )
    assert (project / "broken_out.ipynb").is_file(), "the executed notebook is kept for debugging"


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["x = 1", "%time y = 2\nz = (1,"], "cell 2 failed at line 2 (z = (1,): SyntaxError: incomplete input"),
        (
            ["def f():\n    return 1 / 0", "y = 2\nf()"],
            "cell 2 failed at line 2 (f()): ZeroDivisionError: division by zero",
        ),
    ],
    ids=["syntax-error", "error-in-a-function"],
)
def test_a_failing_cell_is_said_with_its_line_and_the_users_error_only(
    project: Path, cells: List[str], message: str
) -> None:
    """The cell, its line and the user's exception; no frame of magnus or of this plugin is printed."""
    notebook(project / "failing.ipynb", cells)
    steps = {"failing": {"type": "task", "command_type": "notebook", "command": "failing.ipynb", "next": "success"}}
    (project / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "failing", "steps": {**steps, **TERMINALS}}}))
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "p.yaml", "-c", "config.yaml", "--run-id", "nb-failing"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"Error: run 'nb-failing' ended FAIL at step 'failing': TaskFailedError: {message}" in result.stderr
    assert "magnus_task_notebook" not in result.stderr and "magnus/" not in result.stderr
    assert "Traceback (most recent call last)" not in result.stderr


def test_a_notebook_in_a_map_branch(project: Path) -> None:
    branch = {
        "start_at": "nb",
        "steps": {
            "nb": {
                "type": "task",
                "command_type": "notebook",
                "command": "item.ipynb",
                "returns": ["squared"],
                "next": "success",
            },
            **TERMINALS,
        },
    }
    step = {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": branch, "next": "success"}
    run_log = run(project, {"each": step}, "each", "nb-3")
    assert run_log.status == "SUCCESS"
    assert (project / "item_out_1.ipynb").is_file() and (project / "item_out_2.ipynb").is_file()
    assert run_log.steps["each"].branches["each.2"].steps["each.2.nb"].status == "SUCCESS"


def test_items_magnus_0_5_1_named_alike_write_notebooks_of_their_own(project: Path) -> None:
    from magnus.map_position import MapPosition
    from magnus_task_notebook.task import NotebookTaskType

    task = NotebookTaskType(command="item.ipynb")
    assert task.output_path(MapPosition({"item": "1"})) == "item_out_1.ipynb"
    assert task.output_path(MapPosition({"item": 1}, {"item": "1~number"})) == "item_out_1~number.ipynb"


def test_refuses_what_is_not_a_notebook(project: Path) -> None:
    from magnus.errors import PipelineDefinitionError

    step = {"type": "task", "command_type": "notebook", "command": "train.py", "next": "success"}
    with pytest.raises(PipelineDefinitionError, match=r"dag\.steps\.t\.command: .*runs an \.ipynb file"):
        run(project, {"t": step}, "t", "nb-4")


def test_execute_notebook_command(project: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "magnus",
            "execute_notebook",
            "train.ipynb",
            "-p",
            "params.yaml",
            "-c",
            "config.yaml",
            "--run-id",
            "nb-cli",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    log = json.loads((project / ".run_log_store" / "nb-cli.json").read_text())
    assert log["steps"]["train"]["status"] == "SUCCESS"


def test_import_magnus_does_not_import_the_engine() -> None:
    code = "import magnus, sys; print('ploomber_engine' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_a_cell_ending_the_interpreter_fails_the_step(project: Path) -> None:
    """``os._exit`` in a cell ends magnus's process (the notebook runs in it): the supervising process
    records the step FAIL and ``magnus execute`` exits 1, not 0."""
    notebook(project / "exits.ipynb", ["import os", "os._exit(0)"])
    steps = {"exits": {"type": "task", "command_type": "notebook", "command": "exits.ipynb", "next": "success"}}
    (project / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "exits", "steps": {**steps, **TERMINALS}}}))
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "p.yaml", "-c", "config.yaml", "--run-id", "nb-exit"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "its process exited with code 0, before recording its end" in result.stderr
    run_log = json.loads((project / ".run_log_store" / "nb-exit.json").read_text())
    assert run_log["status"] == "FAIL"
    assert run_log["steps"]["exits"]["message"] == "its process exited with code 0, before recording the step"


# ---- secrets printed by a cell (issue 31) --------------------------------------------------------------
SECRET = "tr0ub4dor-and-3-horses"
PIECES_CELL = """
import sys
print("notebook:", SECRET_TEXT[:5], end="")
sys.stdout.flush()
print(SECRET_TEXT[5:])
"""


class KnownSecrets(BaseSecrets):
    """A backend that declares its value up front, as a dotenv file does."""

    service_name: ClassVar[str] = "known"

    def values_to_mask(self) -> List[str]:
        return [SECRET]

    def get(self, name: str) -> str:
        return SECRET


def test_a_secret_printed_in_pieces_is_masked_in_the_console_the_execution_log_and_the_notebook(
    project: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """ploomber's display wrote each piece on a line of its own: "\\ntr0ub\\n" then "\\n4dor-...\\n"."""
    notebook(project / "pieces.ipynb", [PIECES_CELL.replace("SECRET_TEXT", repr(SECRET))])
    catalog = {"type": "file-system"} if is_installed("catalog", "file-system") else {"type": "do-nothing"}
    (project / "config.yaml").write_text(yaml.safe_dump({"run_log_store": {"type": "file-system"}, "catalog": catalog}))
    real = entrypoints.create_service
    monkeypatch.setattr(
        entrypoints,
        "create_service",
        lambda name, block, source="configuration": KnownSecrets() if name == "secrets" else real(name, block, source),
    )
    step = {"type": "task", "command_type": "notebook", "command": "pieces.ipynb", "next": "success"}
    run_log = run(project, {"nb": step}, "nb", "nb-pieces")
    assert run_log.status == "SUCCESS", run_log.steps["nb"].message

    console = capfd.readouterr()
    assert "notebook: ***\n" in console.out
    logs = list(project.glob(".catalog/nb-pieces/*.execution.log"))
    assert [path.read_text() for path in logs] == (["notebook: ***\n"] if catalog["type"] == "file-system" else [])
    executed = (project / "pieces_out.ipynb").read_text()
    for text in (console.out + console.err, executed):
        assert SECRET[:5] not in text and SECRET[5:] not in text


def test_a_notebook_is_cached_by_its_cells(project: Path) -> None:
    """Same cells and parameters: reused; a cell edited: run again (outputs never count)."""
    step = {"type": "task", "command_type": "notebook", "command": "train.ipynb", "cache": True, "next": "success"}

    def reused(run_id: str) -> bool:
        run_log = run(project, {"train": step}, "train", run_id)
        assert run_log.status == "SUCCESS", run_log.steps["train"].message
        cache = run_log.steps["train"].cache
        assert cache is not None and "train.ipynb" in cache.components["code"]
        return cache.reused_from is not None

    assert not reused("cells-1")
    assert reused("cells-2")
    executed = nbformat.read(project / "train.ipynb", as_version=4)
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", text="kept outputs change nothing")]
    nbformat.write(executed, project / "train.ipynb")
    assert reused("cells-3")
    executed.cells[1].source = "accuracy = rate * 3\nlabel = name"
    nbformat.write(executed, project / "train.ipynb")
    assert not reused("cells-4")

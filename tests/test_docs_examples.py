"""The python written in the docs runs as shown, in the project each page says it runs in.

Pages whose examples come from files (``--8<--`` snippets of examples/) are run by test_examples.py;
here are the pages written as notebook cells: the past-runs client in a project ``magnus init``
made, and the SDK reference's first example. A cell's comments say what it shows; a cell the page
says fails is run expecting that failure.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A python block, at the start of a line or indented in a content tab (=== "SDK").
_CELL = re.compile(r"^( *)```python\n(.*?)^\1```", re.M | re.S)


def cells(page: str) -> List[str]:
    """The python blocks of a docs page, in order (snippet directives left out: their files run elsewhere)."""
    found = [textwrap.dedent(cell) for _, cell in _CELL.findall((ROOT / "docs" / page).read_text())]
    return [cell for cell in found if "--8<--" not in cell]


def magnus(folder: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "magnus", *args], cwd=folder, check=True, capture_output=True, text=True)


def test_the_past_runs_page_runs_as_shown_in_the_project_magnus_init_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    magnus(tmp_path, "init", "demo")
    demo = tmp_path / "demo"
    magnus(demo, "execute", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "first-try")
    (demo / "tuned.yaml").write_text((demo / "parameters.yaml").read_text().replace("0.01", "0.02"))
    magnus(demo, "execute", "-c", "config.yaml", "-p", "tuned.yaml", "--run-id", "second-try", "--tag", "tuning")
    monkeypatch.chdir(demo)
    scope: Dict[str, Any] = {}
    shown = cells("concepts/past-runs.md")
    assert len(shown) >= 4
    for cell in shown:
        if "run.objects" in cell:  # the page says this one reads another run (the demo puts no object)
            continue
        if "StepNotFoundError" in cell:  # the page shows this one failing
            from magnus.runs.store import StepNotFoundError

            with pytest.raises(StepNotFoundError, match="did you mean 'train'"):
                exec(cell, scope)
            continue
        exec(cell, scope)
    run = scope["run"]
    assert (run.status, run.tag) == ("SUCCESS", "tuning")  # as the page's comments say
    assert run.parameters["learning_rate"] == 0.02 and set(run.metrics) == {"score"}
    assert list(run.steps) == ["prepare", "train", "success"]


def test_the_sdk_reference_example_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "steps.py").write_text(
        "def clean(rows: int) -> dict:\n    return {'kept': rows - 1}\n\n\n"
        "def train(kept: int) -> dict:\n    return {'model': f'trained on {kept}'}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (first,) = cells("sdk.md")
    scope: Dict[str, Any] = {}
    exec(first, scope)
    assert scope["run_log"].status == "SUCCESS"
    assert scope["run_log"].parameters == {"rows": 100, "kept": 99, "model": "trained on 99"}


def test_the_returns_example_of_the_parameters_page_builds_the_step_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    scope: Dict[str, Any] = {}
    for cell in cells("concepts/parameters.md"):
        exec(cell, scope)
    fit = scope["fit"]
    assert fit.to_step()["returns"] == [
        "points",
        {"name": "line", "kind": "object"},
        {"name": "error", "kind": "metric"},
    ]

"""``magnus graph``: every example drawn, as Mermaid and as dot; malformed pipelines refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PIPELINES = sorted(path for path in EXAMPLES.glob("*.yaml") if path.name != "parameters.yaml")


def magnus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "magnus", *args], cwd=EXAMPLES.parent, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda path: path.name)
def test_every_example_is_drawn_in_mermaid(pipeline: Path) -> None:
    result = magnus("graph", "-f", f"examples/{pipeline.name}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart TD\n")
    assert ":::success" in result.stdout


def test_composites_are_subgraphs_and_failure_edges_differ() -> None:
    text = magnus("graph", "-f", "examples/pipeline.yaml").stdout
    assert "subgraph process_" in text and '["process (parallel)"]' in text
    assert "(map over chunks as chunk)" in text
    assert "-. on failure .->" in text
    assert ":::stub" in text


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda path: path.name)
def test_every_example_is_valid_dot(pipeline: Path, tmp_path: Path) -> None:
    result = magnus("graph", "-f", f"examples/{pipeline.name}", "--format", "dot")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("digraph pipeline {")
    dot = shutil.which("dot")
    if dot is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is not installed (.ci/run installs it)")
        pytest.skip("Graphviz's dot is not installed here")
    rendered = subprocess.run([dot, "-Tsvg"], input=result.stdout, capture_output=True, text=True, check=False)
    assert rendered.returncode == 0, rendered.stderr
    assert "<svg" in rendered.stdout


def test_malformed_pipelines_are_refused_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dag:\n  start_at: nowhere\n  steps:\n    a: {type: stub, next: finish}\n")
    result = magnus("graph", "-f", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {bad}: dag.start_at: 'nowhere' is not a step (known: a, success, fail) (and 1 more: "
        f"{bad}: dag.steps.a.next: 'finish' is not a step (known: a, success, fail))"
    ]

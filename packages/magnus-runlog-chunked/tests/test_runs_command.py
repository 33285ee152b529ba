"""``magnus runs`` over chunked-fs run logs written by real ``magnus execute`` processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from magnus.testing.pipelines import dag, map_of, run_magnus, task, write_pipeline

pytestmark = pytest.mark.slow

SHELL = {"command_type": "shell"}
BRANCHES = {
    "left": dag("say", {"say": task("echo left", **SHELL)}),
    "right": dag("wait", {"wait": {"type": "stub", "next": "success"}}),
}
STEPS = {
    "fan": map_of('test "$MAGNUS_PRM_chunk" != "$MAGNUS_PRM_bad" || exit 3', "both", "chunks", "chunk", **SHELL),
    "both": {"type": "parallel", "next": "success", "branches": BRANCHES},
}


def magnus(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_magnus(*args, cwd=project, isolated=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs in a chunked-fs store: ``good`` (every item passes) and ``bad`` (item 2 fails), tag t."""
    root = tmp_path_factory.mktemp("chunked-runs")
    write_pipeline(root, STEPS, "fan")
    (root / "config.yaml").write_text("run_log_store:\n  type: chunked-fs\n  config:\n    log_folder: logs\n")
    for run_id, bad in (("good", 99), ("bad", 2)):
        (root / f"{run_id}.yaml").write_text(f"chunks: [1, 2, 3]\nbad: {bad}\n")
        arguments = ["-f", "pipeline.yaml", "-c", "config.yaml", "-p", f"{run_id}.yaml", "--tag", "t"]
        result = magnus(root, "execute", *arguments, "--run-id", run_id)
        assert result.returncode == (0 if run_id == "good" else 1), result.stderr
    assert (root / "logs" / "good" / "RunLog.json").is_file()
    return root


def test_list(project: Path) -> None:
    result = magnus(project, "runs", "list", "-c", "config.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "STATUS", "TAG", "START", "DURATION"]
    assert [line.split()[:3] for line in lines[1:]] == [["bad", "FAIL", "t"], ["good", "SUCCESS", "t"]]
    failed = magnus(project, "runs", "list", "-c", "config.yaml", "--status", "FAIL")
    assert [line.split()[0] for line in failed.stdout.splitlines()[1:]] == ["bad"]


def test_show(project: Path) -> None:
    result = magnus(project, "runs", "show", "bad", "-c", "config.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "run bad  FAIL  tag t"
    fan = next(line for line in lines if line.startswith("fan "))
    assert fan.split()[1:3] == ["map", "FAIL"] and "fan.2" in fan
    items = [line for line in lines if line.startswith(("├─ [", "└─ ["))]
    assert [item.split()[1:3] for item in items] == [["[1]", "branch"], ["[2]", "branch"], ["[3]", "branch"]]
    assert "FAIL" in items[1] and "SUCCESS" in items[0]
    shown = json.loads(magnus(project, "runs", "show", "good", "-c", "config.yaml", "--json").stdout)
    assert shown["status"] == "SUCCESS"
    assert sorted(shown["steps"]["both"]["branches"]) == ["both.left", "both.right"]


def test_diff(project: Path) -> None:
    result = magnus(project, "runs", "diff", "good", "bad", "-c", "config.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["--- good", "+++ bad"]
    assert "  ~ bad  99 -> 2" in result.stdout
    assert "  ~ fan.2.work" in result.stdout and "SUCCESS -> FAIL" in result.stdout


def test_report_and_unknown_run(project: Path) -> None:
    result = magnus(project, "runs", "report", "bad", "-c", "config.yaml", "-o", "bad.html")
    assert result.returncode == 0, result.stderr
    page = (project / "bad.html").read_text()
    assert 'id="step:fan.map_variable_placeholder.work"' in page
    assert 'class="bar status-FAIL" data-step="fan.2.work"' in page
    missing = magnus(project, "runs", "show", "gone", "-c", "config.yaml")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "Error: run 'gone' not found in run_log_store 'chunked-fs'"

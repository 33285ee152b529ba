"""``magnus runs`` over chunked-fs run logs written by real ``magnus execute`` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PIPELINE = textwrap.dedent(
    """\
    dag:
      start_at: fan
      steps:
        fan:
          type: map
          iterate_on: chunks
          iterate_as: chunk
          next: both
          branch:
            start_at: work
            steps:
              work:
                type: task
                command_type: shell
                command: 'test "$MAGNUS_PRM_chunk" != "$MAGNUS_PRM_bad" || exit 3'
                next: success
              success: {type: success}
              fail: {type: fail}
        both:
          type: parallel
          next: success
          branches:
            left:
              start_at: say
              steps:
                say: {type: task, command_type: shell, command: 'echo left', next: success}
                success: {type: success}
                fail: {type: fail}
            right:
              start_at: wait
              steps:
                wait: {type: stub, next: success}
                success: {type: success}
                fail: {type: fail}
        success: {type: success}
        fail: {type: fail}
    """
)


def magnus(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAGNUS_")}
    return subprocess.run(
        [sys.executable, "-m", "magnus", *args], cwd=project, capture_output=True, text=True, check=False, env=env
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs in a chunked-fs store: ``good`` (every item passes) and ``bad`` (item 2 fails), tag t."""
    root = tmp_path_factory.mktemp("chunked-runs")
    (root / "pipeline.yaml").write_text(PIPELINE)
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

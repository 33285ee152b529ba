"""``magnus runs list|show|diff|report`` on runs made by real ``magnus execute`` processes.

The runs live in a file-system store: the example pipeline (parallel, map, shell, nested dag)
twice with different parameters, and a pipeline whose map fails at one item. The HTML report is
opened in headless Chromium: its DOM after rendering and the pixels of its screenshot are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from magnus.diagram import STATUS_COLOURS
from magnus.testing.pipelines import map_of, run_magnus, write_pipeline
from magnus.testing.run_log_store import RUN_LOG_KEYS

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CONFIG = "store.yaml"
BAD_CHUNK = 'test "$MAGNUS_PRM_chunk" != 3 || { echo "chunk 3 is bad"; exit 1; }'
FAILING = {"fan": map_of(BAD_CHUNK, iterate_on="chunks", iterate_as="chunk", command_type="shell")}


def magnus(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_magnus(*args, cwd=project, isolated=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the examples and three runs in its file-system store: ok-1, ok-2 (seed 7), broken."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (root / CONFIG).write_text("run_log_store:\n  type: file-system\n  config:\n    log_folder: logs\n")
    (root / "seed7.yaml").write_text((EXAMPLES / "parameters.yaml").read_text().replace("seed: 42", "seed: 7"))
    write_pipeline(root, FAILING, "fan", "failing.yaml")
    pipeline = ["-f", "examples/pipeline.yaml", "-c", CONFIG, "--tag", "demo"]
    runs = [
        ["execute", *pipeline, "-p", "examples/parameters.yaml", "--run-id", "ok-1"],
        ["execute", *pipeline, "-p", "seed7.yaml", "--run-id", "ok-2"],
        ["execute", "-f", "failing.yaml", "-c", CONFIG, "-p", "examples/parameters.yaml", "--run-id", "broken"],
    ]
    for arguments in runs:
        result = magnus(root, *arguments)
        assert result.returncode == (1 if "broken" in arguments else 0), result.stderr
    return root


def table(output: str) -> List[Dict[str, str]]:
    """The rows of ``runs list`` by column (cells hold no double spaces)."""
    header, *rows = output.splitlines()
    names = [name.strip() for name in header.split("  ") if name.strip()]
    return [dict(zip(names, [cell.strip() for cell in row.split("  ") if cell.strip()], strict=True)) for row in rows]


# ---- list --------------------------------------------------------------------------------------------
def test_list_shows_every_run_newest_first(project: Path) -> None:
    result = magnus(project, "runs", "list", "-c", CONFIG)
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert [(row["RUN ID"], row["STATUS"], row["TAG"]) for row in rows] == [
        ("broken", "FAIL", "-"),
        ("ok-2", "SUCCESS", "demo"),
        ("ok-1", "SUCCESS", "demo"),
    ]
    for row in rows:
        assert row["START"].startswith("20") and row["DURATION"].endswith("s")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--status", "FAIL"], ["broken"]),
        (["--status", "success"], ["ok-2", "ok-1"]),
        (["--tag", "demo"], ["ok-2", "ok-1"]),
        (["--tag", "demo", "--limit", "1"], ["ok-2"]),
        (["--since", "1h"], ["broken", "ok-2", "ok-1"]),
        (["--since", "2020-01-01"], ["broken", "ok-2", "ok-1"]),
    ],
)
def test_list_filters(project: Path, options: List[str], expected: List[str]) -> None:
    result = magnus(project, "runs", "list", "-c", CONFIG, *options)
    assert result.returncode == 0, result.stderr
    assert [row["RUN ID"] for row in table(result.stdout)] == expected


def test_list_says_when_nothing_matches(project: Path) -> None:
    result = magnus(project, "runs", "list", "-c", CONFIG, "--since", "2999-01-01")
    assert (result.returncode, result.stdout) == (0, "no runs found\n")


def test_a_bad_since_is_one_line(project: Path) -> None:
    result = magnus(project, "runs", "list", "-c", CONFIG, "--since", "yesterday")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --since 'yesterday': expected a duration ago (30m, 2h, 3d, 1w) or a date/time "
        "(2026-11-25, 2026-11-25T14:00)"
    ]


# ---- show --------------------------------------------------------------------------------------------
def test_show_draws_the_tree(project: Path) -> None:
    result = magnus(project, "runs", "show", "ok-1", "-c", CONFIG)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "run ok-1  SUCCESS  tag demo"
    for expected in ("prepare ", "process ", "├─ [chunks] ", "│  ├─ each chunk ", "└─ [shell] ", "└─ [dag] "):
        assert any(line.startswith(expected) for line in lines), (expected, result.stdout)
    map_items = [line for line in lines if line.startswith(("│  │  ├─ [", "│  │  └─ ["))]
    assert [line.split("]")[0][-1] for line in map_items] == ["1", "2", "3", "4"]
    prepare = next(line for line in lines if line.startswith("prepare "))
    assert prepare.split()[1:3] == ["task", "SUCCESS"] and prepare.endswith("1 attempt")


def test_show_names_the_failure(project: Path) -> None:
    result = magnus(project, "runs", "show", "broken", "-c", CONFIG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("run broken  FAIL\n")
    failed = [line for line in result.stdout.splitlines() if "work" in line and "FAIL" in line]
    assert len(failed) == 1 and "exit" in failed[0], result.stdout
    fan = next(line for line in result.stdout.splitlines() if line.startswith("fan "))
    assert "FAIL" in fan and "branches that did not succeed: fan.3" in fan


def test_show_json_is_the_run_log(project: Path) -> None:
    result = magnus(project, "runs", "show", "ok-1", "-c", CONFIG, "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert list(shown) == RUN_LOG_KEYS
    assert shown == json.loads((project / "logs" / "ok-1.json").read_text())


# ---- diff --------------------------------------------------------------------------------------------
def test_diff_shows_what_changed(project: Path) -> None:
    result = magnus(project, "runs", "diff", "ok-1", "ok-2", "-c", CONFIG)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == ["--- ok-1", "+++ ok-2", "parameters:", "  ~ seed  42 -> 7"]
    assert lines[-1].startswith("same: run") and "steps" in lines[-1]


def test_diff_of_different_pipelines(project: Path) -> None:
    result = magnus(project, "runs", "diff", "ok-1", "broken", "-c", CONFIG)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "  ~ status               SUCCESS -> FAIL" in text
    assert "  - prepare" in text and "(not in the second run)" in text
    assert "  + fan.3.work" in text and "FAIL" in text


# ---- refusals ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["show", "nope"], ["diff", "ok-1", "nope"], ["report", "nope", "-o", "x.html"]])
def test_an_unknown_run_is_one_line(project: Path, command: List[str]) -> None:
    result = magnus(project, "runs", *command, "-c", CONFIG)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["Error: run 'nope' not found in run_log_store 'file-system'"]
    assert not (project / "x.html").exists()


def test_a_malformed_run_id_is_refused(project: Path) -> None:
    result = magnus(project, "runs", "show", "../logs/ok-1", "-c", CONFIG)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: RUN_ID '../logs/ok-1': ") and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [["list"], ["show", "ok-1"], ["report", "ok-1", "-o", "r.html"]])
def test_the_buffered_store_is_refused(project: Path, tmp_path: Path, command: List[str]) -> None:
    (tmp_path / "buffered.yaml").write_text("run_log_store:\n  type: buffered\n")
    result = magnus(project, "runs", *command, "-c", str(tmp_path / "buffered.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'buffered.yaml'}: run_log_store 'buffered' keeps run logs in the memory of the run's "
        "process: there are no runs to read; configure a store that keeps them (file-system, chunked-fs, db) with -c"
    ]


# ---- report ------------------------------------------------------------------------------------------
def report(project: Path, run_id: str) -> str:
    result = magnus(project, "runs", "report", run_id, "-c", CONFIG, "-o", f"{run_id}.html")
    assert result.returncode == 0, result.stderr
    return (project / f"{run_id}.html").read_text()


def test_the_report_is_self_contained(project: Path) -> None:
    page = report(project, "broken")
    for reference in ("<script", "<link", "<img", "<iframe", "url(", "@import", "src=", "href="):
        assert reference not in page.lower(), reference
    assert 'id="step:fan"' in page and 'id="step:fan.map_variable_placeholder.work"' in page
    assert 'class="bar status-FAIL" data-step="fan.3.work"' in page
    assert "chunk 3 is bad" not in page or "execution.log" in page  # logs stay in the catalog, not the page


def test_the_report_without_a_recorded_pipeline_says_so(project: Path) -> None:
    log = json.loads((project / "logs" / "ok-1.json").read_text())
    log["run_id"] = "no-dag"
    log["run_config"].pop("dag")
    (project / "logs" / "no-dag.json").write_text(json.dumps(log))
    try:
        page = report(project, "no-dag")
    finally:
        (project / "logs" / "no-dag.json").unlink()
    assert "The pipeline is not drawn: the run log does not record its pipeline (run_config.dag)." in page
    assert 'class="bar status-SUCCESS"' in page and "<h2>Metrics</h2>" in page


@pytest.mark.parametrize("where", ["absolute", "climbing"])
def test_the_report_reads_no_dag_definition_outside_the_working_folder(
    project: Path, tmp_path: Path, where: str
) -> None:
    """A run log names the files of its nested dags: only those in the project folder are read."""
    outside = tmp_path / "outside.yaml"
    outside.write_text("dag:\n  start_at: leaked_name\n  steps:\n    leaked_name: {type: success}\n")
    log = json.loads((project / "logs" / "ok-1.json").read_text())
    pipeline_folder = (project / log["run_config"]["pipeline_file"]).parent  # where the run found it
    definition = str(outside) if where == "absolute" else os.path.relpath(outside, pipeline_folder)
    log["run_id"] = f"outside-{where}"
    log["run_config"]["dag"] = {
        "start_at": "nested",
        "steps": {
            "nested": {"type": "dag", "dag_definition": definition, "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    (project / "logs" / f"outside-{where}.json").write_text(json.dumps(log))
    try:
        page = report(project, f"outside-{where}")
    finally:
        (project / "logs" / f"outside-{where}.json").unlink()
    assert "leaked_name" not in page
    assert f"&#x27;{definition}&#x27; is outside" in page or f"'{definition}' is outside" in page


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/install-test-tools installs it)")
        pytest.skip("chromium is not installed here")
    return found


def browse(page: Path, profile: Path, *output: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a local page, offline: no network service, no first-run, no sync."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1200,1800",
        *output,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def colour_pixels(png: Path, colour: str) -> int:
    from PIL import Image

    wanted = tuple(int(colour[index : index + 2], 16) for index in (1, 3, 5))
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        counts = rgb.getcolors(maxcolors=rgb.width * rgb.height) or []
    return sum(count for count, pixel in counts if all(abs(a - b) <= 2 for a, b in zip(pixel, wanted, strict=True)))


def test_the_report_renders_in_chromium(project: Path, tmp_path: Path) -> None:
    report(project, "broken")
    page = project / "broken.html"

    dumped = browse(page, tmp_path / "dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr
    dom = dumped.stdout
    assert '<g id="step:fan" class="cluster step status-FAIL"' in dom
    assert '<g id="step:fan.map_variable_placeholder.work" class="node step status-FAIL"' in dom
    assert '<g id="step:fail" class="node step status-FAIL"' in dom  # the run ended at its fail node
    assert '<g id="step:success" class="node step status-NOT_RUN"' in dom
    assert dom.count('class="bar status-SUCCESS"') >= 5 and dom.count('class="bar status-FAIL"') == 2

    shot = tmp_path / "report.png"
    taken = browse(page, tmp_path / "shot", f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr
    # Filled shapes of each status: the diagram's nodes and the timeline's bars (hundreds of pixels each).
    assert colour_pixels(shot, STATUS_COLOURS["FAIL"]) > 2000
    assert colour_pixels(shot, STATUS_COLOURS["SUCCESS"]) > 2000
    assert colour_pixels(shot, STATUS_COLOURS["NOT_RUN"]) > 500

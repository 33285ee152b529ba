"""``magnus lineage PATH``: which step of which run put a file, with what it read, recursively.

Two real runs of a three-step pipeline with ``--cache``: ``clean`` puts ``data/clean.txt``,
``features`` gets it and puts ``data/features.txt``, ``train`` gets that and puts
``data/model.txt``. The second run changes ``train``'s parameter only, so ``clean`` and
``features`` are reused from the first: the lineage of its model crosses both runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import magnus
from magnus.plugins import is_installed
from magnus.testing.pipelines import run_magnus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not is_installed("catalog", "file-system"), reason="magnus-catalog-fs is not installed here"),
]

STEPS = """
from pathlib import Path


def clean(rows: int) -> None:
    Path("data").mkdir(exist_ok=True)
    Path("data/clean.txt").write_text("x\\n" * rows)


def features() -> None:
    Path("data/features.txt").write_text(str(len(Path("data/clean.txt").read_text())))


def train(rate: float) -> None:
    Path("data/model.txt").write_text(f"{rate} {Path('data/features.txt').read_text()}")
"""

PIPELINE = """
dag:
  start_at: clean
  steps:
    clean:
      type: task
      command: lineage_steps.clean
      catalog: {put: [data/clean.txt]}
      next: features
    features:
      type: task
      command: lineage_steps.features
      catalog: {get: [data/clean.txt], put: [data/features.txt]}
      next: train
    train:
      type: task
      command: lineage_steps.train
      catalog: {get: [data/features.txt], put: [data/model.txt]}
      next: success
    success: {type: success}
    fail: {type: fail}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lineage")
    (root / "lineage_steps.py").write_text(STEPS)
    (root / "pipeline.yaml").write_text(PIPELINE)
    (root / "config.yaml").write_text("run_log_store: {type: file-system}\ncatalog: {type: file-system}\n")
    for run_id, rate in (("first", 0.1), ("second", 0.2)):
        (root / "params.yaml").write_text(f"rows: 3\nrate: {rate}\n")
        arguments = ["execute", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id, "-q", "--cache"]
        result = run_magnus(*arguments, cwd=root, isolated=True)
        assert result.returncode == 0, result.stderr
    return root


def test_the_lineage_of_a_file_crosses_three_steps_and_two_runs(project: Path) -> None:
    result = run_magnus("lineage", "data/model.txt", "--run", "second", "-c", "config.yaml", cwd=project, isolated=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data/model.txt  ")
    assert lines[1].startswith("  put by run second, step train at ")
    assert lines[3] == "  parameters: rate=0.2"
    assert lines[4].startswith("  data/features.txt  ")
    assert lines[5].startswith("    put by run first, step features at ") and lines[5].endswith(
        "(reused in second/features)"
    )
    # what features (executed in the first run) got, it got there
    assert lines[8].startswith("      put by run first, step clean at ") and "reused" not in lines[8]
    assert lines[10] == "      parameters: rows=3"
    assert len(lines) == 11  # clean got nothing: the tree ends there


def test_the_lineage_as_json_and_from_the_sdk_agree(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_magnus("lineage", "data/model.txt", "--run", "first", "--json", "-c", "config.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)
    chain = []
    node = tree
    while node and node["producer"]:
        chain.append((node["path"], node["producer"]["run_id"], node["producer"]["step"]))
        node = node["producer"]["inputs"][0] if node["producer"]["inputs"] else None
    assert chain == [
        ("data/model.txt", "first", "train"),
        ("data/features.txt", "first", "features"),
        ("data/clean.txt", "first", "clean"),
    ]
    monkeypatch.chdir(project)
    from_sdk = magnus.Run("second", config="config.yaml").lineage("data/features.txt")
    assert from_sdk.producer is not None
    assert (from_sdk.producer.run_id, from_sdk.producer.step) == ("first", "features")
    assert from_sdk.producer.inputs[0].producer is not None and from_sdk.producer.inputs[0].producer.step == "clean"


def test_a_path_no_run_put_is_refused_in_one_line(project: Path) -> None:
    result = run_magnus("lineage", "data/nothing.txt", "--run", "first", "-c", "config.yaml", cwd=project)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: run 'first' put no file 'data/nothing.txt' in the catalog"


def test_the_report_marks_reused_steps_and_draws_the_runs_lineage(project: Path) -> None:
    result = run_magnus("runs", "report", "second", "-o", "second.html", "-c", "config.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    page = (project / "second.html").read_text()
    cache = page[page.index('<section id="cache">') : page.index('<section id="lineage"')]
    assert "<td>clean</td><td>reused from run first, step clean at " in cache
    assert "<td>magnus runs why second clean</td>" in cache
    assert "<td>train</td><td>ran (key " in cache
    lineage = page[page.index('<section id="lineage"') : page.index('<section id="catalog">')]
    if "not drawn" not in lineage:  # Graphviz here: the diagram names the files and the reused steps
        assert "<svg" in lineage and "data/features.txt" in lineage and "reused from first" in lineage


def test_a_file_no_step_put_ends_its_branch_of_the_tree(tmp_path: Path) -> None:
    """A file got by a step whose content no indexed step put (recorded by an older magnus, or put in
    the catalog by hand) is an input: the tree ends there, saying so."""
    from magnus.datastore.file_system import FileSystemRunLogStore
    from magnus.datastore.models import CacheRecord, DataCatalog, StepAttempt, StepLog
    from magnus.runs.lineage import lineage, render

    store = FileSystemRunLogStore(log_folder=str(tmp_path))
    store.create_run_log("old")
    untracked = StepLog(name="load", internal_name="load", status="SUCCESS")  # no cache key: never indexed
    untracked.data_catalog = [DataCatalog(name="raw.csv", data_hash="1" * 64, stage="put")]
    store.add_step_log("old", untracked)
    store.index_step("old", untracked)
    store.create_run_log("new")
    step = StepLog(name="fit", internal_name="fit", status="SUCCESS", cache=CacheRecord(key="a" * 64))
    step.attempts = [StepAttempt(status="SUCCESS", end_time="2026-12-06 10:00:00", parameters={"rate": 0.5})]
    step.data_catalog = [
        DataCatalog(name="raw.csv", data_hash="1" * 64, stage="get"),
        DataCatalog(name="model.bin", data_hash="2" * 64, stage="put"),
    ]
    store.add_step_log("new", step)
    store.index_step("new", step)
    tree = lineage(store, "model.bin", "new")
    assert tree.producer is not None and [child.producer for child in tree.producer.inputs] == [None]
    assert render(tree).splitlines() == [
        "model.bin  222222222222",
        "  put by run new, step fit at 2026-12-06 10:00:00",
        "  code: unknown",
        "  parameters: rate=0.5",
        "  raw.csv  111111111111",
        "    put by no step (an input)",
    ]


def test_execution_logs_are_no_data_of_the_index() -> None:
    """A step's execution log is put in the catalog, but no file of the project holds it: the logs of
    a map's items, alike, would otherwise be one index entry each under one hash."""
    from magnus.datastore.index import put_hashes
    from magnus.datastore.models import CacheRecord, DataCatalog, StepLog

    step = StepLog(name="work", internal_name="each.3.work", status="SUCCESS", cache=CacheRecord(key="a" * 64))
    step.data_catalog = [
        DataCatalog(name="work.execution.log_3", data_hash="1" * 64, stage="put"),
        DataCatalog(name="work.execution.log", data_hash="2" * 64, stage="put"),
        DataCatalog(name="model.execution.log.csv", data_hash="3" * 64, stage="put"),  # data named oddly
        DataCatalog(name="features.csv", data_hash="4" * 64, stage="put"),
    ]
    assert put_hashes(step) == ["3" * 64, "4" * 64]

"""Past runs read back as Python objects (``magnus.Run``, ``magnus.runs()``), beside ``magnus runs``.

The runs are made by real ``magnus execute`` processes in a project folder: a run that puts an
object, a catalog file and a metric and fans out over a map, and a run that fails. Both the CLI
and the client read them from the stores found without ``-c`` (``.run_log_store/`` is right
there), from ``-c``/``config=``, and from ``MAGNUS_CONFIG_FILE``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterator

import pytest

import magnus
from magnus.datastore.models import DataCatalog
from magnus.errors import CatalogError, ConfigurationError, MagnusError, UserInputError
from magnus.plugins import is_installed
from magnus.runs.client import CatalogFile
from magnus.testing.pipelines import error_line, run_magnus

pytestmark = pytest.mark.slow

STEPS = """
from pathlib import Path

import magnus


def prepare(seed: int) -> dict:
    magnus.put_object({"weights": [1, 2, seed]}, "model")
    magnus.track_this(accuracy=0.75)
    Path("data").mkdir(exist_ok=True)
    Path("data/report.txt").write_text(f"seed {seed}\\n")
    return {"rows": 10 * seed}


def work(chunk: int) -> None:
    if chunk == 3:
        raise ValueError("chunk 3 is bad")
"""

PIPELINE = """
dag:
  start_at: prepare
  steps:
    prepare:
      type: task
      command: past_steps.prepare
      catalog:
        put: [data/report.txt]
      next: fan
    fan:
      type: map
      iterate_on: chunks
      iterate_as: chunk
      branch:
        start_at: work
        steps:
          work:
            type: task
            command: past_steps.work
            next: success
          success:
            type: success
          fail:
            type: fail
      next: success
    success:
      type: success
    fail:
      type: fail
"""


def make_project(root: Path, catalog: str) -> Path:
    (root / "past_steps.py").write_text(STEPS)
    (root / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE))
    (root / "good.yaml").write_text("seed: 3\nchunks: [1, 2]\n")
    (root / "bad.yaml").write_text("seed: 4\nchunks: [1, 3]\n")
    (root / "config.yaml").write_text(f"run_log_store:\n  type: file-system\ncatalog:\n  type: {catalog}\n")
    for run_id, parameters, tag, code in (("ok-run", "good.yaml", "demo", 0), ("bad-run", "bad.yaml", "", 1)):
        arguments = ["execute", "-c", "config.yaml", "-p", parameters, "--run-id", run_id, "-q"]
        result = run_magnus(*arguments, *(["--tag", tag] if tag else []), cwd=root, isolated=True)
        assert result.returncode == code, result.stderr
    return root


# The file-system catalog is magnus-catalog-fs's: with core alone (its nox session) only the runs
# keeping their objects in the working folder are read back.
@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            "file-system",
            marks=pytest.mark.skipif(
                not is_installed("catalog", "file-system"), reason="magnus-catalog-fs is not installed here"
            ),
        ),
        "do-nothing",
    ],
)
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs, their objects kept by a catalog that keeps data, or (do-nothing) in the working folder."""
    return make_project(tmp_path_factory.mktemp("past"), request.param)


@pytest.fixture
def inside(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """In the project folder, with no configuration named by the environment."""
    monkeypatch.chdir(project)
    for variable in ("MAGNUS_CONFIG_FILE", "MAGNUS_CONFIGURATION_FILE"):
        monkeypatch.delenv(variable, raising=False)
    yield project


def test_a_run_reads_back_status_times_parameters_metrics(inside: Path) -> None:
    run = magnus.Run("ok-run", config="config.yaml")
    assert (run.run_id, run.status, run.tag) == ("ok-run", "SUCCESS", "demo")
    assert run.start is not None and run.end is not None and run.duration == run.end - run.start
    assert run.parameters == {"seed": 3, "chunks": [1, 2], "rows": 30}
    assert run.metrics == {"accuracy": 0.75}
    assert list(run.steps) == ["prepare", "fan", "success"]
    prepare = run.steps["prepare"]
    assert (prepare.status, prepare.step_type, len(prepare.attempts)) == ("SUCCESS", "task", 1)
    assert prepare.parameters == {"seed": 3} and prepare.metrics == {"accuracy": 0.75}
    assert not prepare.mocked and not run.mocked


def test_map_items_and_their_failures_are_reachable(inside: Path) -> None:
    run = magnus.Run("bad-run", config="config.yaml")
    assert run.status == "FAIL"
    fan = run.steps["fan"]
    assert list(fan.branches) == ["1", "3"]
    assert fan.branches["1"].status == "SUCCESS"
    failed = fan.branches["3"].steps["work"]
    assert failed.status == "FAIL" and "chunk 3 is bad" in failed.message
    assert failed.attempts[-1].parameters == {"chunk": 3}


def test_objects_load_on_demand_through_the_catalog_and_pickler(inside: Path) -> None:
    run = magnus.Run("ok-run", config="config.yaml")
    assert run.objects == ["model"]
    assert run.get_object("model") == {"weights": [1, 2, 3]}
    assert magnus.Run("bad-run", config="config.yaml").get_object("model") == {"weights": [1, 2, 4]}
    with pytest.raises(CatalogError, match=r"^run 'ok-run': no object 'modle' was put; did you mean 'model'\?$"):
        run.get_object("modle")


def test_catalog_files_are_read_or_copied_on_demand(inside: Path, tmp_path: Path) -> None:
    run = magnus.Run("ok-run", config="config.yaml")
    if not run.stores.catalog.keeps_data:
        assert run.files == []
        return
    report = next(file for file in run.files if file.name == "data/report.txt")
    assert report.read_bytes() == b"seed 3\n"
    copied = report.copy_to(tmp_path / "out")
    assert copied == tmp_path / "out" / "data" / "report.txt" and copied.read_text() == "seed 3\n"


def test_a_file_named_out_of_the_folder_is_not_copied_there(inside: Path, tmp_path: Path) -> None:
    """A run log edited by hand cannot make ``copy_to`` write outside the folder it is given."""
    run = magnus.Run("ok-run", config="config.yaml")
    for name in ("../escape.txt", str(tmp_path / "absolute.txt")):
        with pytest.raises(CatalogError, match="would be copied outside"):
            CatalogFile(DataCatalog(name=name), run).copy_to(tmp_path / "out")
    assert sorted(path.name for path in tmp_path.rglob("*")) == []


def test_runs_lists_newest_first_and_filters(inside: Path) -> None:
    assert [run.run_id for run in magnus.runs(config="config.yaml")] == ["bad-run", "ok-run"]
    assert [run.run_id for run in magnus.runs(status="fail")] == ["bad-run"]
    assert [run.run_id for run in magnus.runs(tag="demo")] == ["ok-run"]
    assert [run.run_id for run in magnus.runs(limit=1)] == ["bad-run"]


def test_without_config_the_store_right_here_is_read_by_cli_and_sdk(inside: Path) -> None:
    listed = run_magnus("runs", "list", cwd=inside, isolated=True)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["bad-run", "ok-run"]
    shown = run_magnus("runs", "show", "ok-run", cwd=inside, isolated=True)
    assert shown.returncode == 0 and shown.stdout.startswith("run ok-run  SUCCESS")
    assert magnus.Run("ok-run").status == "SUCCESS"
    assert [run.run_id for run in magnus.runs()] == ["bad-run", "ok-run"]


def test_magnus_config_file_names_the_store(inside: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text(f"run_log_store:\n  type: file-system\n  config:\n    log_folder: {inside / '.run_log_store'}\n")
    listed = run_magnus("runs", "list", cwd=tmp_path, isolated=True, env={"MAGNUS_CONFIG_FILE": str(config)})
    assert listed.returncode == 0 and "ok-run" in listed.stdout, listed.stderr
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAGNUS_CONFIG_FILE", str(config))
    assert magnus.Run("ok-run").status == "SUCCESS"


def test_no_store_here_is_one_line_in_cli_and_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = (
        "no run log store to read: no -c (or MAGNUS_CONFIG_FILE) given and no .run_log_store/ folder here; "
        "pass -c with the configuration the runs were made with"
    )
    result = run_magnus("runs", "list", cwd=tmp_path, isolated=True)
    assert error_line(result, 2) == f"Error: {expected}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAGNUS_CONFIG_FILE", raising=False)
    with pytest.raises(ConfigurationError) as raised:
        magnus.runs()
    assert str(raised.value) == expected


def test_unknown_run_id_says_the_close_one_in_cli_and_sdk(inside: Path) -> None:
    expected = "run 'ok-rnu' not found in run_log_store 'file-system'; did you mean 'ok-run'?"
    assert error_line(run_magnus("runs", "show", "ok-rnu", cwd=inside, isolated=True), 2) == f"Error: {expected}"
    with pytest.raises(UserInputError) as raised:
        magnus.Run("ok-rnu")
    assert str(raised.value) == expected
    with pytest.raises(UserInputError, match=r"^run 'zzz' not found in run_log_store 'file-system'$"):
        magnus.Run("zzz")


def test_unknown_step_says_the_close_one_in_cli_and_sdk(inside: Path) -> None:
    expected = "run 'ok-run': no step 'fna' (steps: prepare, fan, success); did you mean 'fan'?"
    shown = run_magnus("runs", "show", "ok-run", "--step", "fna", cwd=inside, isolated=True)
    assert error_line(shown, 2) == f"Error: {expected}"
    run = magnus.Run("ok-run")
    with pytest.raises(KeyError) as raised:
        run.steps["fna"]
    assert isinstance(raised.value, MagnusError) and str(raised.value) == expected
    assert "fna" not in run.steps and run.steps.get("fan") is run.steps["fan"]
    with pytest.raises(KeyError, match=r"branch 'fan\.1': no step 'wrk' .*did you mean 'work'"):
        run.steps["fan"].branches["1"].steps["wrk"]


def test_runs_show_one_step_and_what_it_holds(inside: Path) -> None:
    shown = run_magnus("runs", "show", "bad-run", "--step", "fan", cwd=inside, isolated=True)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split()[:3] for line in shown.stdout.splitlines()[3:]]
    assert rows[0] == ["fan", "map", "FAIL"] and ["└─", "[3]", "branch"] in rows
    assert not any("prepare" in line for line in shown.stdout.splitlines())

"""The file-system catalog against the magnus.testing contract, and in real runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from magnus.catalog import BaseCatalog
from magnus.config import default_service_types
from magnus.entrypoints import execute
from magnus.errors import CatalogError
from magnus.reach import Reach
from magnus.testing import CatalogContract, ExecutorContract
from magnus.testing.pipelines import dag, map_of, task, write_pipeline
from magnus_catalog_fs.catalog import FileSystemCatalog


class TestFileSystemCatalog(CatalogContract):
    @pytest.fixture
    def catalog(self, tmp_path: Path) -> BaseCatalog:
        return FileSystemCatalog(catalog_location=str(tmp_path / "catalog"))


class TestFileSystemCatalogInTheWorkingFolder(CatalogContract):
    """The catalog where users keep it: a folder of the working folder, which ``**/*`` would match."""

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> BaseCatalog:
        return FileSystemCatalog(catalog_location=str(tmp_path / "compute" / "my-catalog"))


class TestLocalExecutorWithTheCatalog(ExecutorContract):
    @pytest.fixture
    def configuration(self, tmp_path: Path) -> dict:
        return {
            "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "logs")}},
            "catalog": {"type": "file-system", "config": {"catalog_location": str(tmp_path / "catalog")}},
        }


def test_installed_catalog_is_the_default() -> None:
    assert default_service_types()["catalog"] == "file-system"


STEPS = """
from pathlib import Path

import magnus


def make() -> None:
    Path("data").mkdir(exist_ok=True)
    Path("data/rows.csv").write_text("a,b\\n1,2\\n")
    Path("data/skip.txt").write_text("not put")
    print("made the data")
    magnus.put_object({"k": 1}, "thing")


def use() -> None:
    assert Path("data/rows.csv").read_text() == "a,b\\n1,2\\n"
    assert magnus.get_object("thing") == {"k": 1}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "catalog_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    steps = {
        "make": {"type": "task", "command": "catalog_steps.make", "next": "clean", "catalog": {"put": ["data/*.csv"]}},
        "clean": {"type": "task", "command_type": "shell", "command": "rm -r data", "next": "use"},
        "use": {"type": "task", "command": "catalog_steps.use", "next": "success", "catalog": {"get": ["data/*.csv"]}},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "make", "steps": steps}}))
    return tmp_path


def test_data_flows_between_steps_through_the_catalog(project: Path) -> None:
    run_log = execute("pipeline.yaml", "config.yaml", run_id="cat-run")
    assert run_log.status == "SUCCESS", {name: step.message for name, step in run_log.steps.items()}
    assert (project / ".catalog" / "cat-run" / "data" / "rows.csv").is_file()
    assert not (project / ".catalog" / "cat-run" / "data" / "skip.txt").exists()

    make = run_log.steps["make"]
    names = {(entry.name, entry.stage) for entry in make.data_catalog}
    assert ("data/rows.csv", "put") in names
    assert ("thing.pickle", "put") in names
    assert ("make.execution.log", "put") in names
    log = (project / ".catalog" / "cat-run" / "make.execution.log").read_text()
    assert "made the data" in log
    assert ("data/rows.csv", "get") in {(entry.name, entry.stage) for entry in run_log.steps["use"].data_catalog}
    assert not (project / "thing.pickle").exists(), "put_object leaves nothing behind in the compute folder"


def test_a_put_of_nothing_fails_the_step(project: Path) -> None:
    steps = yaml.safe_load((project / "pipeline.yaml").read_text())
    steps["dag"]["steps"]["make"]["catalog"]["put"] = ["nothing/*.csv"]
    (project / "pipeline.yaml").write_text(yaml.safe_dump(steps))
    run_log = execute("pipeline.yaml", "config.yaml", run_id="cat-nothing")
    assert run_log.status == "FAIL"
    assert "catalog put failed: nothing matches 'nothing/*.csv'" in run_log.steps["make"].message


def test_resumed_runs_read_the_old_runs_data(project: Path) -> None:
    (project / "broken.flag").write_text("")
    steps = yaml.safe_load((project / "pipeline.yaml").read_text())
    steps["dag"]["steps"]["clean"]["command"] = "test ! -e broken.flag && rm -r data"
    (project / "pipeline.yaml").write_text(yaml.safe_dump(steps))
    assert execute("pipeline.yaml", "config.yaml", run_id="cat-1").status == "FAIL"
    (project / "broken.flag").unlink()
    resumed = execute("pipeline.yaml", "config.yaml", run_id="cat-2", use_cached="cat-1")
    assert resumed.status == "SUCCESS"
    assert resumed.steps["make"].mock is True
    assert (project / ".catalog" / "cat-2" / "data" / "rows.csv").is_file()
    stored = json.loads((project / ".run_log_store" / "cat-2.json").read_text())
    assert stored["run_config"]["catalog_handler"]["service_name"] == "file-system"


def test_declares_its_folder_for_steps_run_elsewhere(tmp_path: Path) -> None:
    catalog = FileSystemCatalog(catalog_location=str(tmp_path / "shared" / "catalog"))
    assert catalog.local_paths() == [str(tmp_path / "shared" / "catalog")]
    assert FileSystemCatalog().local_paths() == [".catalog"]
    assert catalog.reach() == Reach.MACHINE


def test_the_configured_compute_folder_is_used(project: Path) -> None:
    """``compute_data_folder`` (now a field of every catalog) is where gets and puts happen."""
    config = {
        "run_log_store": {"type": "file-system"},
        "catalog": {"type": "file-system", "config": {"compute_data_folder": "work"}},
    }
    (project / "work.yaml").write_text(yaml.safe_dump(config))
    steps = {
        "make": {
            "type": "task",
            "command_type": "shell",
            "command": "mkdir -p work && echo made > work/out.txt",
            "next": "success",
            "catalog": {"put": ["out.txt"]},
        },
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (project / "work-pipeline.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "make", "steps": steps}}))
    run_log = execute("work-pipeline.yaml", "work.yaml", run_id="cat-work")
    assert run_log.status == "SUCCESS", run_log.steps["make"].message
    assert (project / ".catalog" / "cat-work" / "out.txt").read_text() == "made\n"
    assert run_log.run_config["catalog_handler"]["compute_data_folder"] == "work"


def run_magnus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "magnus", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_map_values_like_paths_keep_their_execution_logs_in_the_run_folder(project: Path) -> None:
    """A map value ``../x`` (or ``/abs``, ``..``) is encoded in the log's name: the run completes."""
    (project / "each.py").write_text("def each(item: str) -> None:\n    print('item', item)\n")
    (project / "parameters.yaml").write_text(yaml.safe_dump({"items": ["../x", "/abs", "..", "ok"]}))
    branch = dag("each", {"each": task("each.each")})
    write_pipeline(project, {"over": {**map_of("each.each"), "branch": branch}}, "over", "map.yaml")
    result = run_magnus(
        "execute", "-f", "map.yaml", "-c", "config.yaml", "-p", "parameters.yaml", "--run-id", "m", cwd=project
    )
    assert result.returncode == 0, result.stderr
    logs = sorted(path.name for path in (project / ".catalog" / "m").iterdir())
    assert logs == sorted(
        ["each.execution.log_..%2Fx", "each.execution.log_%2Fabs", "each.execution.log_..", "each.execution.log_ok"]
    )
    assert "item ../x" in (project / ".catalog" / "m" / "each.execution.log_..%2Fx").read_text()
    assert not (project / "x").exists() and not (project.parent / "x").exists()


def test_a_put_of_everything_does_not_copy_the_catalog_into_itself(project: Path) -> None:
    """``put: ["**/*"]`` from the working folder, as the docs show, run after run: the catalog stays the same size."""
    steps = {
        "make": {
            "type": "task",
            "command_type": "shell",
            "command": "mkdir -p data && echo row > data/rows.csv",
            "next": "success",
            "catalog": {"put": ["**/*"]},
        },
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (project / "everything.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "make", "steps": steps}}))
    sizes = []
    for number in range(3):
        result = run_magnus(
            "execute", "-f", "everything.yaml", "-c", "config.yaml", "--run-id", f"all-{number}", cwd=project
        )
        assert result.returncode == 0, result.stderr
        run_folder = project / ".catalog" / f"all-{number}"
        assert not (run_folder / ".catalog").exists() and not (run_folder / ".run_log_store").exists()
        sizes.append(len(list(run_folder.rglob("*"))))
    assert sizes[0] == sizes[1] == sizes[2]


@pytest.mark.parametrize("folder", ["/etc", "../outside"])
def test_a_compute_folder_outside_the_working_folder_is_refused(project: Path, folder: str) -> None:
    config = {"catalog": {"type": "file-system", "config": {"compute_data_folder": folder}}}
    (project / "outside.yaml").write_text(yaml.safe_dump(config))
    result = run_magnus("execute", "-c", "outside.yaml", cwd=project)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: outside.yaml: catalog.config.compute_data_folder: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_run_id_that_is_a_path_is_refused_by_the_catalog(tmp_path: Path) -> None:
    catalog = FileSystemCatalog(catalog_location=str(tmp_path / "catalog"))
    for run_id in ("../x", "..", "/abs"):
        with pytest.raises(CatalogError):
            catalog.put_data("file", b"data", run_id)
    assert sorted(path.name for path in tmp_path.rglob("*")) == []


def test_a_symlinked_run_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "catalog" / "run").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(CatalogError, match="leads outside"):
        FileSystemCatalog(catalog_location=str(tmp_path / "catalog")).put_data("file", b"data", "run")
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_catalog_location_that_is_a_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "taken").write_text("a file")
    (tmp_path / "config.yaml").write_text("catalog:\n  type: file-system\n  config:\n    catalog_location: taken\n")
    (tmp_path / "pipeline.yaml").write_text(
        "dag:\n  start_at: s\n  steps:\n    s: {type: stub, next: success}\n"
        "    success: {type: success}\n    fail: {type: fail}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "pipeline.yaml", "-c", "config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "Error: config.yaml: catalog.config.catalog_location: 'taken' is a file, not a folder"
    ]


def test_a_run_id_given_again_never_reads_an_earlier_runs_files(project: Path) -> None:
    """With the run log kept in memory (nothing remembers the first run), ``--run-id`` given again:
    the catalog folder of the earlier run refuses the new run before any step runs."""
    (project / "memory.yaml").write_text("run_log_store:\n  type: buffered\n")
    first = run_magnus("execute", "-f", "pipeline.yaml", "-c", "memory.yaml", "--run-id", "again", cwd=project)
    assert first.returncode == 0, first.stderr
    steps = yaml.safe_load((project / "pipeline.yaml").read_text())
    use_only = {"start_at": "use", "steps": {name: steps["dag"]["steps"][name] for name in ("use", "success", "fail")}}
    (project / "use.yaml").write_text(yaml.safe_dump({"dag": use_only}))  # gets data/*.csv it never made
    second = run_magnus("execute", "-f", "use.yaml", "-c", "memory.yaml", "--run-id", "again", cwd=project)
    assert second.returncode == 2
    assert (
        "Error: the catalog already holds files of an earlier run with id 'again' (.catalog/again): "
        "choose another --run-id, or remove that folder" in second.stderr
    )
    assert "use started" not in second.stderr

"""The fsspec catalog against the magnus.testing contract on a real S3 HTTP API (moto), file:// and
memory://, and in real runs of ``magnus execute``."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from magnus.catalog import BaseCatalog
from magnus.errors import CatalogError, ConfigurationError
from magnus.testing import CatalogContract, ExecutorContract
from magnus.testing.s3 import S3Server
from magnus_catalog_fsspec.catalog import FsspecCatalog

_memory_numbers = itertools.count()


class TestCatalogOnS3(CatalogContract):
    """moto's S3 server over HTTP; credentials and endpoint from the AWS environment."""

    @pytest.fixture
    def catalog(self, s3_bucket: str) -> BaseCatalog:
        return FsspecCatalog(location=f"s3://{s3_bucket}/catalog")


class TestCatalogOnFileUrl(CatalogContract):
    @pytest.fixture
    def catalog(self, tmp_path: Path) -> BaseCatalog:
        return FsspecCatalog(location=f"file://{tmp_path}/catalog")


class TestCatalogOnFileUrlInTheWorkingFolder(CatalogContract):
    """A file:// catalog in the folder that ``**/*`` is put from: it never copies itself."""

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> BaseCatalog:
        return FsspecCatalog(location=f"file://{tmp_path}/compute/my-catalog")


class TestCatalogInMemory(CatalogContract):
    @pytest.fixture
    def catalog(self) -> BaseCatalog:
        return FsspecCatalog(location=f"memory://magnus-tests/catalog-{next(_memory_numbers)}")


class TestLocalExecutorWithTheCatalogOnS3(ExecutorContract):
    @pytest.fixture
    def configuration(self, tmp_path: Path, s3_bucket: str) -> Dict[str, Any]:
        return {
            "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "logs")}},
            "catalog": {"type": "fsspec", "config": {"location": f"s3://{s3_bucket}/catalog"}},
        }


# ---- S3 specifics --------------------------------------------------------------------------------
def test_objects_land_under_the_location_only(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a\n")
    catalog = FsspecCatalog(location=f"s3://{s3_bucket}/team/catalog")
    catalog.put("data/*.csv", "run-1", str(tmp_path))
    catalog.put_data("step.execution.log", b"printed", "run-1")
    assert s3_server.keys(s3_bucket) == ["team/catalog/run-1/data/rows.csv", "team/catalog/run-1/step.execution.log"]
    for run_id in ("../x", "..", "a/b", ""):
        with pytest.raises(CatalogError):
            catalog.put_data("file", b"data", run_id)
    assert len(s3_server.keys(s3_bucket)) == 2


def test_runs_whose_ids_share_a_prefix_are_apart(s3_bucket: str, tmp_path: Path) -> None:
    """``run-1`` is a prefix of ``run-10`` as text: a get of run-1 never sees run-10's objects."""
    catalog = FsspecCatalog(location=f"s3://{s3_bucket}/catalog")
    catalog.put_data("only-in-10.txt", b"ten", "run-10")
    catalog.put_data("one.txt", b"one", "run-1")
    got = catalog.get("*", "run-1", str(tmp_path))
    assert [entry.name for entry in got] == ["one.txt"]
    catalog.sync_between_runs("run-1", "run-2")
    assert [entry.name for entry in catalog.get("**/*", "run-2", str(tmp_path))] == ["one.txt"]


def test_a_put_of_an_unchanged_file_is_not_uploaded_again(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    catalog = FsspecCatalog(location=f"s3://{s3_bucket}/catalog")
    first = catalog.put("model.bin", "run-1", str(tmp_path))
    s3_server.client().delete_object(Bucket=s3_bucket, Key="catalog/run-1/model.bin")
    catalog.put("model.bin", "run-1", str(tmp_path), synced_catalogs=first)
    assert s3_server.keys(s3_bucket) == [], "the synced entry's hash matched: nothing was sent"
    (tmp_path / "model.bin").write_bytes(b"new weights")
    catalog.put("model.bin", "run-1", str(tmp_path), synced_catalogs=first)
    assert s3_server.keys(s3_bucket) == ["catalog/run-1/model.bin"]


def test_storage_options_take_secrets_and_never_show_them(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials come from ``${name}`` secrets, not the environment; the summary shows the placeholders."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {
        "key": "${s3_key}",
        "secret": "${s3_secret}",
        "client_kwargs": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    }
    catalog = FsspecCatalog(location=f"s3://{s3_bucket}/catalog", storage_options=options)
    with pytest.raises(
        ConfigurationError, match=r"catalog.config.location: storage_options name secrets \(s3_key, s3_secret\)"
    ):
        catalog.put_data("x", b"x", "run-1")
    secrets = {"s3_key": s3_server.access_key_id, "s3_secret": s3_server.secret_access_key}
    asked = []
    catalog.resolve_secrets(lambda name: asked.append(name) or secrets[name])
    catalog.put_data("x.txt", b"x", "run-1")
    assert s3_server.keys(s3_bucket) == ["catalog/run-1/x.txt"]
    assert asked == ["s3_key", "s3_secret"]
    summary = json.dumps(catalog.get_summary())
    assert "${s3_secret}" in summary and s3_server.secret_access_key not in summary

    literal = FsspecCatalog(location="s3://b/c", storage_options={"secret": "plain-text", "profile": "dev"})
    assert literal.get_summary()["storage_options"] == {"secret": "***", "profile": "dev"}


def test_a_missing_backend_names_the_extra_to_install() -> None:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    catalog = FsspecCatalog(location="gs://bucket/catalog")
    with pytest.raises(ConfigurationError, match=r"pip install 'magnus-catalog-fsspec\[gcs\]'"):
        catalog.put_data("x", b"x", "run-1")


def test_a_missing_backend_stops_the_run_before_any_step(tmp_path: Path) -> None:
    """One line, exit 2, and the step never ran: the store is opened when the run is composed."""
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    (tmp_path / "c.yaml").write_text("catalog: {type: fsspec, config: {location: 'gs://bucket/catalog'}}\n")
    steps = {
        "s": {"type": "task", "command_type": "shell", "command": "touch ran", "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "s", "steps": steps}}))
    result = run_magnus("execute", "-f", "p.yaml", "-c", "c.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: catalog.config.location: the backend of 'gs://bucket/catalog' is not installed: "
        "pip install 'magnus-catalog-fsspec[gcs]'"
    ]
    assert not (tmp_path / "ran").exists()


def test_a_local_path_is_refused_with_the_right_catalog_named() -> None:
    with pytest.raises(ValueError, match="is not a URL"):
        FsspecCatalog(location="/tmp/catalog")


def test_declares_a_file_url_folder_for_steps_run_elsewhere(tmp_path: Path) -> None:
    assert FsspecCatalog(location=f"file://{tmp_path}/cat").local_paths() == [f"{tmp_path}/cat"]
    assert FsspecCatalog(location="s3://bucket/cat").local_paths() == []


def test_fsspec_is_imported_only_when_the_catalog_is_used(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from magnus_catalog_fsspec.catalog import FsspecCatalog\n"
        "catalog = FsspecCatalog(location='memory://lazy/catalog')\n"
        "assert 'fsspec' not in sys.modules, 'imported on start-up'\n"
        "catalog.put_data('x', b'x', 'run')\n"
        "assert 'fsspec' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=60)


# ---- real runs --------------------------------------------------------------------------------
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
def project(tmp_path: Path, s3_bucket: str) -> Path:
    """A pipeline passing data through the catalog on S3; run logs in a local folder."""
    (tmp_path / "catalog_steps.py").write_text(textwrap.dedent(STEPS))
    config = {
        "run_log_store": {"type": "file-system"},
        "catalog": {"type": "fsspec", "config": {"location": f"s3://{s3_bucket}/catalog"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    steps = {
        "make": {"type": "task", "command": "catalog_steps.make", "next": "clean", "catalog": {"put": ["data/*.csv"]}},
        "clean": {"type": "task", "command_type": "shell", "command": "test ! -e broken.flag && rm -r data"},
        "use": {"type": "task", "command": "catalog_steps.use", "next": "success", "catalog": {"get": ["data/*.csv"]}},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    steps["clean"]["next"] = "use"
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "make", "steps": steps}}))
    return tmp_path


def run_magnus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "magnus", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=180
    )


@pytest.mark.slow
def test_a_run_passes_data_through_s3_and_resumes(project: Path, s3_server: S3Server, s3_bucket: str) -> None:
    """``magnus execute``: a failed run, then ``--use-cached``: the new run starts from the old run's objects."""
    (project / "broken.flag").write_text("")
    failed = run_magnus("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "first", cwd=project)
    assert failed.returncode == 1, failed.stderr
    assert s3_server.keys(s3_bucket, "catalog/first/") == [
        "catalog/first/.magnus-claim",
        "catalog/first/clean.execution.log",
        "catalog/first/data/rows.csv",
        "catalog/first/make.execution.log",
        "catalog/first/thing.pickle",
    ]
    (project / "broken.flag").unlink()
    resumed = run_magnus(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "config.yaml",
        "--run-id",
        "second",
        "--use-cached",
        "first",
        cwd=project,
    )
    assert resumed.returncode == 0, resumed.stderr
    run_log = json.loads((project / ".run_log_store" / "second.json").read_text())
    assert run_log["steps"]["make"]["mock"] is True
    assert ("data/rows.csv", "get") in {
        (entry["name"], entry["stage"]) for entry in run_log["steps"]["use"]["data_catalog"]
    }
    assert "catalog/second/data/rows.csv" in s3_server.keys(s3_bucket, "catalog/second/")
    assert "catalog/second/use.execution.log" in s3_server.keys(s3_bucket, "catalog/second/")
    assert run_log["run_config"]["catalog_handler"]["service_name"] == "fsspec"
    assert not (project / ".catalog").exists() and not (project / "thing.pickle").exists()


# ---- credentials in storage_options and the location (issue 31) ----------------------------------------
CREDENTIALS = {
    "auth": ["user", "Auth-Pass-1"],
    "headers": {"Authorization": "Bearer Header-Token-2", "Accept": "application/json"},
    "passwd": "Passwd-Value-3",
    "key": ["List-Key-4"],
    "client_kwargs": {"aws_secret_access_key": {"nested": "Nested-Secret-5"}},
}


def test_credentials_in_storage_options_are_masked_whatever_their_shape(tmp_path: Path) -> None:
    """Lists, nested mappings, ``passwd`` and ``auth`` pairs were recorded in clear in the run log."""
    config = {
        "run_log_store": {"type": "file-system"},
        "catalog": {
            "type": "fsspec",
            "config": {"location": f"file://{tmp_path}/catalog", "storage_options": CREDENTIALS},
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    steps = {
        "s": {"type": "task", "command_type": "shell", "command": "echo x > out.txt", "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    steps["s"]["catalog"] = {"put": ["out.txt"]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "s", "steps": steps}}))
    result = run_magnus("execute", "-f", "p.yaml", "-c", "c.yaml", "--run-id", "masked", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recorded = (tmp_path / ".run_log_store" / "masked.json").read_text()
    for value in ("Auth-Pass-1", "Header-Token-2", "Passwd-Value-3", "List-Key-4", "Nested-Secret-5"):
        assert value not in recorded + result.stdout + result.stderr
    assert json.loads(recorded)["run_config"]["catalog_handler"]["storage_options"] == {
        "auth": ["***", "***"],
        "headers": {"Authorization": "***", "Accept": "application/json"},
        "passwd": "***",
        "key": ["***"],
        "client_kwargs": {"aws_secret_access_key": {"nested": "***"}},
    }


def test_a_password_in_the_location_is_masked_where_it_is_recorded() -> None:
    catalog = FsspecCatalog(location="sftp://backup:Sftp-Pass-6@files.example/catalog")
    assert catalog.get_summary()["location"] == "sftp://backup:***@files.example/catalog"
    assert catalog.handler_location() == "sftp://backup:***@files.example/catalog"  # each data catalog entry's

"""The promises of :class:`~magnus.catalog.BaseCatalog`, as tests (for catalogs that keep data)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from magnus.catalog import BaseCatalog
from magnus.errors import CatalogClaimedError, CatalogError


class CatalogContract:
    """Subclass and provide a ``catalog`` fixture; ``compute`` is the step's working folder."""

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> BaseCatalog:
        raise NotImplementedError("provide a catalog fixture")

    @pytest.fixture
    def compute(self, tmp_path: Path, monkeypatch: Any) -> Path:
        folder = tmp_path / "compute"
        folder.mkdir()
        monkeypatch.chdir(folder)
        return folder

    def test_put_then_get_in_another_folder(self, catalog: BaseCatalog, compute: Path, tmp_path: Path) -> None:
        (compute / "data").mkdir()
        (compute / "data" / "rows.csv").write_text("a,b\n1,2\n")
        entries = catalog.put("data/rows.csv", "run-1", str(compute))
        assert [entry.name for entry in entries] == ["data/rows.csv"]
        assert entries[0].stage == "put"
        assert entries[0].data_hash == hashlib.sha256(b"a,b\n1,2\n").hexdigest()

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        got = catalog.get("data/rows.csv", "run-1", str(elsewhere))
        assert [entry.stage for entry in got] == ["get"]
        assert (elsewhere / "data" / "rows.csv").read_text() == "a,b\n1,2\n"

    def test_a_file_made_by_magnus_is_put_under_its_name(
        self, catalog: BaseCatalog, compute: Path, tmp_path: Path
    ) -> None:
        """``put_file``: an execution log, written elsewhere, lands in the run's files as ``name``."""
        made = tmp_path / "scratch" / "execution.log"
        made.parent.mkdir()
        made.write_bytes(b"printed\n" * 1000)
        entries = catalog.put_file("step.execution.log_a%2Fb", made, "run-1")
        assert [(entry.name, entry.stage) for entry in entries] == [("step.execution.log_a%2Fb", "put")]
        assert entries[0].data_hash == hashlib.sha256(b"printed\n" * 1000).hexdigest()
        assert made.read_bytes() == b"printed\n" * 1000, "the source is left as it was"
        catalog.get("step.execution.log_a%2Fb", "run-1", str(compute))
        assert (compute / "step.execution.log_a%2Fb").read_bytes() == b"printed\n" * 1000

    def test_globs(self, catalog: BaseCatalog, compute: Path, tmp_path: Path) -> None:
        for name in ("a.csv", "b.csv", "c.txt"):
            (compute / name).write_text(name)
        assert sorted(entry.name for entry in catalog.put("*.csv", "run-1", str(compute))) == ["a.csv", "b.csv"]
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        catalog.get("*", "run-1", str(elsewhere))
        assert sorted(path.name for path in elsewhere.iterdir()) == ["a.csv", "b.csv"]

    def test_runs_are_kept_apart(self, catalog: BaseCatalog, compute: Path, tmp_path: Path) -> None:
        (compute / "x.txt").write_text("one")
        catalog.put("x.txt", "run-1", str(compute))
        with pytest.raises(CatalogError):
            catalog.get("x.txt", "run-2", str(tmp_path))

    def test_a_run_id_is_claimed_once(self, catalog: BaseCatalog, compute: Path, tmp_path: Path) -> None:
        """A run claims its part of the catalog; an earlier run's files under that id refuse the claim."""
        catalog.claim("run-1")
        with pytest.raises(CatalogClaimedError):
            catalog.claim("run-1")
        (compute / "x.txt").write_text("one")
        catalog.put("x.txt", "run-1", str(compute))
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        assert [entry.name for entry in catalog.get("**/*", "run-1", str(elsewhere))] == ["x.txt"]  # no claim mark
        catalog.put("x.txt", "unclaimed", str(compute))  # written before claims existed
        with pytest.raises(CatalogClaimedError, match="earlier run with id 'unclaimed'"):
            catalog.claim("unclaimed")
        catalog.claim("new-run")
        catalog.sync_between_runs("run-1", "new-run")  # --use-cached: after the claim
        assert [entry.name for entry in catalog.get("**/*", "new-run", str(elsewhere))] == ["x.txt"]

    def test_put_of_nothing_is_an_error(self, catalog: BaseCatalog, compute: Path) -> None:
        with pytest.raises(CatalogError):
            catalog.put("missing/*.csv", "run-1", str(compute))

    def test_sync_between_runs(self, catalog: BaseCatalog, compute: Path, tmp_path: Path) -> None:
        (compute / "model.bin").write_bytes(b"\x00\x01")
        catalog.put("model.bin", "old-run", str(compute))
        catalog.sync_between_runs("old-run", "new-run")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        catalog.get("model.bin", "new-run", str(elsewhere))
        assert (elsewhere / "model.bin").read_bytes() == b"\x00\x01"

    def test_a_reused_steps_files_are_copied_between_runs_with_their_hashes(
        self, catalog: BaseCatalog, compute: Path, tmp_path: Path
    ) -> None:
        (compute / "out").mkdir()
        (compute / "out" / "model.bin").write_bytes(b"\x00\x01")
        (compute / "out" / "report[1].txt").write_text("odd name")
        (compute / "other.txt").write_text("not copied")
        put = catalog.put("out/*", "old-run", str(compute)) + catalog.put("other.txt", "old-run", str(compute))
        catalog.claim("new-run")
        copied = catalog.copy_between_runs([entry for entry in put if entry.name != "other.txt"], "old-run", "new-run")
        assert sorted((entry.name, entry.data_hash, entry.stage) for entry in copied) == sorted(
            (entry.name, entry.data_hash, "put") for entry in put if entry.name != "other.txt"
        )
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        assert sorted(entry.name for entry in catalog.get("**/*", "new-run", str(elsewhere))) == [
            "out/model.bin",
            "out/report[1].txt",
        ]
        assert (elsewhere / "out" / "model.bin").read_bytes() == b"\x00\x01"
        gone = [entry.model_copy(update={"name": "out/gone.bin"}) for entry in put[:1]]
        with pytest.raises(CatalogError):
            catalog.copy_between_runs(gone, "old-run", "newer-run")

    @pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd", "data/../../outside.txt"])
    def test_paths_leaving_the_folder_are_refused(self, catalog: BaseCatalog, compute: Path, name: str) -> None:
        (compute.parent / "outside.txt").write_text("secret")
        with pytest.raises(CatalogError):
            catalog.put(name, "run-1", str(compute))
        with pytest.raises(CatalogError):
            catalog.get(name, "run-1", str(compute))

    def test_symlinks_leading_out_are_refused(self, catalog: BaseCatalog, compute: Path) -> None:
        (compute.parent / "outside.txt").write_text("secret")
        (compute / "link.txt").symlink_to(compute.parent / "outside.txt")
        with pytest.raises(CatalogError):
            catalog.put("link.txt", "run-1", str(compute))

    def test_get_never_writes_through_a_symlinked_folder(
        self, catalog: BaseCatalog, compute: Path, tmp_path: Path
    ) -> None:
        (compute / "data").mkdir()
        (compute / "data" / "rows.csv").write_text("a,b\n")
        catalog.put("data/rows.csv", "run-1", str(compute))
        elsewhere, outside = tmp_path / "elsewhere", tmp_path / "outside"
        elsewhere.mkdir()
        outside.mkdir()
        (elsewhere / "data").symlink_to(outside, target_is_directory=True)
        with pytest.raises(CatalogError):
            catalog.get("data/rows.csv", "run-1", str(elsewhere))
        with pytest.raises(CatalogError):
            catalog.get("**/*", "run-1", str(elsewhere))
        assert list(outside.iterdir()) == []

    def test_put_never_reads_through_a_symlinked_folder(
        self, catalog: BaseCatalog, compute: Path, tmp_path: Path
    ) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("secret")
        (compute / "linked").symlink_to(outside, target_is_directory=True)
        with pytest.raises(CatalogError):
            catalog.put("linked/secret.txt", "run-1", str(compute))

    def test_a_glob_never_puts_the_state_of_magnus(self, catalog: BaseCatalog, compute: Path) -> None:
        """``put: ["**/*"]`` from the working folder skips the catalog's and the run logs' folders."""
        state = [".catalog/old-run/kept.csv", ".run_log_store/old-run.json", "sub/.catalog/x", "logs/run.json"]
        for name in [*state, "data/rows.csv", "top.txt"]:
            (compute / name).parent.mkdir(parents=True, exist_ok=True)
            (compute / name).write_text(name)
        catalog.keep_out_of_puts([str(compute / "logs")])
        for folder in catalog.local_paths():  # the catalog's own folder, when it lies in the working folder
            if Path(folder).resolve().is_relative_to(compute.resolve()):
                (Path(folder) / "run-0" / "earlier.txt").parent.mkdir(parents=True, exist_ok=True)
                (Path(folder) / "run-0" / "earlier.txt").write_text("earlier")
        first = sorted(entry.name for entry in catalog.put("**/*", "run-1", str(compute)))
        assert first == ["data/rows.csv", "top.txt"]
        second = sorted(entry.name for entry in catalog.put("**/*", "run-2", str(compute)))
        assert second == first

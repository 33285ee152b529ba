"""``catalog: {type: file-system}``: each run's data under ``<catalog_location>/<run_id>/``.

Names given to ``get``/``put`` are paths or globs relative to the compute folder (``data/*.csv``,
``**/*``). Nothing may leave its folder: absolute names, ``..`` and symlinks that point outside
the compute folder or the catalog are refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import ClassVar, List, Optional

from pydantic import Field

from magnus import defaults
from magnus.atomic import write_atomically
from magnus.catalog import BaseCatalog
from magnus.datastore.models import DataCatalog
from magnus.errors import CatalogError


class FileSystemCatalog(BaseCatalog):
    """Copies files between the compute folder and ``<catalog_location>/<run_id>``."""

    service_name: ClassVar[str] = "file-system"
    # A folder of this machine: other processes here see it, other hosts only through a mount.
    shared_between_hosts: ClassVar[bool] = False

    catalog_location: str = Field(
        default=defaults.CATALOG_LOCATION, description="Folder of the catalog: <catalog_location>/<run_id>/..."
    )

    def local_paths(self) -> List[str]:
        """The catalog's folder, which a step run elsewhere must see at the same path.

        The compute folder is not listed: it is where each step works, not the catalog's state.
        """
        return [self.catalog_location]

    def run_folder(self, run_id: str) -> Path:
        return Path(self.catalog_location) / run_id

    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        source = self.run_folder(run_id)
        target = Path(compute_data_folder or self.compute_data_folder)
        files = _matching_files(source, name, f"run {run_id} of the catalog at {self.catalog_location}")
        entries = []
        for file in files:
            relative = file.relative_to(source)
            _copy(file, target / relative)
            entries.append(self._entry(relative, run_id, _sha256(file), "get"))
        return entries

    def put(
        self,
        name: str,
        run_id: str,
        compute_data_folder: str = "",
        synced_catalogs: Optional[List[DataCatalog]] = None,
    ) -> List[DataCatalog]:
        source = Path(compute_data_folder or self.compute_data_folder)
        target = self.run_folder(run_id)
        already = {entry.name: entry.data_hash for entry in synced_catalogs or [] if entry.stage == "put"}
        entries = []
        for file in _matching_files(source, name, f"compute folder {source}"):
            relative = file.relative_to(source)
            entry = self._entry(relative, run_id, _sha256(file), "put")
            if already.get(entry.name) != entry.data_hash:
                _copy(file, target / relative)
            entries.append(entry)
        return entries

    def put_data(self, name: str, data: bytes, run_id: str) -> List[DataCatalog]:
        """Write magnus's own data (an execution log) straight into the run's folder."""
        relative = Path(_checked_pattern(name))
        target = self.run_folder(run_id) / relative
        write_atomically(target, data, durable=False)
        return [self._entry(relative, run_id, hashlib.sha256(data).hexdigest(), "put")]

    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        previous = self.run_folder(previous_run_id)
        if previous.is_dir():
            shutil.copytree(previous, self.run_folder(run_id), dirs_exist_ok=True, symlinks=True)

    def _entry(self, relative: Path, run_id: str, data_hash: str, stage: str) -> DataCatalog:
        name = relative.as_posix()
        return DataCatalog(
            name=name,
            data_hash=data_hash,
            catalog_relative_path=f"{run_id}/{name}",
            catalog_handler_location=self.catalog_location,
            stage=stage,
        )


def _checked_pattern(name: str) -> str:
    """The glob pattern, refused when it could reach outside its folder."""
    pattern = PurePosixPath(name.replace("\\", "/"))
    if not name.strip() or pattern.is_absolute() or ".." in pattern.parts:
        raise CatalogError(f"'{name}' must be a path inside the folder (no absolute paths, no '..')")
    return str(pattern)


def _matching_files(folder: Path, name: str, where: str) -> List[Path]:
    """Files under ``folder`` matching ``name``; symlinks must resolve inside ``folder``."""
    pattern = _checked_pattern(name)
    root = folder.resolve()
    files = []
    for path in sorted(folder.glob(pattern)):
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            raise CatalogError(f"'{path}' leads outside {folder} (through a symlink); refused")
        if resolved.is_file():
            files.append(path)
    if not files:
        raise CatalogError(f"nothing matches '{name}' in the {where}")
    return files


def _copy(source: Path, target: Path) -> None:
    """Copy so that a reader of ``target`` never sees a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copy2(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

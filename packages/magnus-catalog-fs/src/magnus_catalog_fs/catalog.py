"""``catalog: {type: file-system}``: each run's data under ``<catalog_location>/<run_id>/``.

Names given to ``get``/``put`` are paths or globs relative to the compute folder (``data/*.csv``,
``**/*``). Nothing may leave its folder: absolute names, ``..`` and symlinks (of files or of
folders) that point outside the compute folder or the run's folder of the catalog are refused. A
put skips magnus's own state (the catalog's folder, the run log store's), so ``**/*`` from the
working folder does not copy the catalog into itself.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import ClassVar, Dict, List, Optional, Sequence

from pydantic import Field, field_validator

from magnus import defaults
from magnus.atomic import write_atomically
from magnus.catalog import BaseCatalog
from magnus.datastore.models import DataCatalog
from magnus.errors import CatalogError
from magnus.names import is_inside, path_name_problem

# Folders of magnus's own state, by their default names: a put never copies from under them.
_STATE_FOLDERS = frozenset({defaults.CATALOG_LOCATION, defaults.LOG_FOLDER})


class FileSystemCatalog(BaseCatalog):
    """Copies files between the compute folder and ``<catalog_location>/<run_id>``."""

    service_name: ClassVar[str] = "file-system"
    # A folder of this machine: other processes here see it, other hosts only through a mount.
    shared_between_hosts: ClassVar[bool] = False

    catalog_location: str = Field(
        default=defaults.CATALOG_LOCATION, description="Folder of the catalog: <catalog_location>/<run_id>/..."
    )

    @field_validator("catalog_location")
    @classmethod
    def _is_not_a_file(cls, location: str) -> str:
        """A file where the catalog's folder should be is refused with the config, before anything runs."""
        if os.path.exists(location) and not os.path.isdir(location):
            raise ValueError(f"'{location}' is a file, not a folder")
        return location

    def local_paths(self) -> List[str]:
        """The catalog's folder, which a step run elsewhere must see at the same path.

        The compute folder is not listed: it is where each step works, not the catalog's state.
        """
        return [self.catalog_location]

    def run_folder(self, run_id: str) -> Path:
        """``<catalog_location>/<run_id>``, refused when the run id or a symlink would lead elsewhere.

        Checked once per run and process: resolving the path costs more than a no-op step.
        """
        folder = self._run_folders.get(run_id)
        if folder is not None:
            return folder
        problem = path_name_problem(run_id)
        if problem:
            raise CatalogError(f"run id {run_id!r} {problem}")
        folder = Path(self.catalog_location) / run_id
        if not is_inside(folder, self.catalog_location):
            raise CatalogError(f"'{folder}' leads outside the catalog at {self.catalog_location} (a symlink); refused")
        self._run_folders[run_id] = folder
        return folder

    @functools.cached_property
    def _run_folders(self) -> Dict[str, Path]:
        return {}

    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        source = self.run_folder(run_id)
        target = Path(compute_data_folder or self.compute_data_folder)
        files = _matching_files(source, name, f"run {run_id} of the catalog at {self.catalog_location}")
        entries = []
        for file in files:
            relative = file.relative_to(source)
            _copy(file, _confined(target, relative, "compute folder"))
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
        skipped = [Path(folder).resolve() for folder in self.skipped_folders()]
        for file in _matching_files(source, name, f"compute folder {source}", skipped):
            relative = file.relative_to(source)
            entry = self._entry(relative, run_id, _sha256(file), "put")
            if already.get(entry.name) != entry.data_hash:
                _copy(file, _confined(target, relative, "catalog"))
            entries.append(entry)
        return entries

    def put_data(self, name: str, data: bytes, run_id: str) -> List[DataCatalog]:
        """Write magnus's own data (an execution log) straight into the run's folder."""
        relative = Path(_checked_pattern(name))
        target = _confined(self.run_folder(run_id), relative, "catalog")
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


def _matching_files(folder: Path, name: str, where: str, skipped: Sequence[Path] = ()) -> List[Path]:
    """Files under ``folder`` matching ``name``; symlinks must resolve inside ``folder``.

    Files in a ``skipped`` folder (resolved paths) or under a folder named like magnus's state
    folders are left out.
    """
    pattern = _checked_pattern(name)
    root = folder.resolve()
    files = []
    for path in sorted(folder.glob(pattern)):
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            raise CatalogError(f"'{path}' leads outside {folder} (through a symlink); refused")
        if _STATE_FOLDERS.intersection(path.relative_to(folder).parts[:-1]):
            continue
        if any(resolved.is_relative_to(state) for state in skipped):
            continue
        if resolved.is_file():
            files.append(path)
    if not files:
        raise CatalogError(f"nothing matches '{name}' in the {where}")
    return files


def _confined(folder: Path, relative: Path, what: str) -> Path:
    """``folder / relative``, refused when a symlinked folder on the way leads outside ``folder``.

    The file itself may be a symlink: the copy replaces the link, it never writes through it.
    """
    path = folder / relative
    if len(relative.parts) > 1 and not is_inside(path.parent, folder):  # a file right in ``folder`` is in it
        raise CatalogError(f"'{path}' leads outside the {what} {folder} (through a symlinked folder); refused")
    return path


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

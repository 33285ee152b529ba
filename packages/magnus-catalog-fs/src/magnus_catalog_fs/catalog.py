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
from pathlib import Path
from typing import ClassVar, Dict, List, Sequence

from pydantic import Field, field_validator

from magnus import defaults
from magnus.atomic import write_atomically
from magnus.catalog import (
    BaseCatalog,
    FileToPut,
    catalog_entry,
    checked_pattern,
    confined,
    matching_files,
    replace_file,
    sha256_of,
)
from magnus.datastore.models import DataCatalog
from magnus.errors import CatalogClaimedError, CatalogError
from magnus.names import is_inside, path_name_problem


class FileSystemCatalog(BaseCatalog):
    """Copies files between the compute folder and ``<catalog_location>/<run_id>``."""

    service_name: ClassVar[str] = "file-system"
    # A folder of this machine: other processes here see it, other hosts only through a mount.

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
        files = matching_files(source, name, f"run {run_id} of the catalog at {self.catalog_location}")
        entries = []
        for file in files:
            relative = file.relative_to(source)
            _copy(file, confined(target, relative, "compute folder"))
            entries.append(self._entry(relative, run_id, sha256_of(file), "get"))
        return entries

    def copy_in(self, files: Sequence[FileToPut], run_id: str) -> None:
        target = self.run_folder(run_id)
        for item in files:
            _copy(item.path, confined(target, Path(item.relative), "catalog"))

    def handler_location(self) -> str:
        return self.catalog_location

    def put_data(self, name: str, data: bytes, run_id: str) -> List[DataCatalog]:
        """Write magnus's own data (an execution log) straight into the run's folder."""
        relative = Path(checked_pattern(name))
        target = confined(self.run_folder(run_id), relative, "catalog")
        write_atomically(target, data, durable=False)
        return [self._entry(relative, run_id, hashlib.sha256(data).hexdigest(), "put")]

    def put_file(self, name: str, source: Path, run_id: str) -> List[DataCatalog]:
        """Copy magnus's own file (an execution log) straight into the run's folder, in blocks."""
        relative = Path(checked_pattern(name))
        _copy(source, confined(self.run_folder(run_id), relative, "catalog"))
        return [self._entry(relative, run_id, sha256_of(source), "put")]

    def claim(self, run_id: str) -> None:
        """Create the run's folder: one creator wins (``mkdir`` is atomic); it exists, it is an earlier run's."""
        folder = self.run_folder(run_id)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            raise CatalogClaimedError(run_id, str(folder)) from None

    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        previous = self.run_folder(previous_run_id)
        if previous.is_dir():
            shutil.copytree(previous, self.run_folder(run_id), dirs_exist_ok=True, symlinks=True)

    def copy_between_runs(self, entries: Sequence[DataCatalog], previous_run_id: str, run_id: str) -> List[DataCatalog]:
        """Copy each file from the earlier run's folder into this run's (atomically), hashed as copied."""
        copied: List[DataCatalog] = []
        for name in sorted({entry.name for entry in entries}):
            relative = Path(checked_pattern(name))
            source = confined(self.run_folder(previous_run_id), relative, "catalog")
            if not source.is_file():
                raise CatalogError(
                    f"'{name}' is no longer in run {previous_run_id} of the catalog at {self.catalog_location}"
                )
            target = confined(self.run_folder(run_id), relative, "catalog")
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(source, target)
            copied.append(self._entry(relative, run_id, sha256_of(target), "put"))
        return copied

    def _entry(self, relative: Path, run_id: str, data_hash: str, stage: str) -> DataCatalog:
        return catalog_entry(relative.as_posix(), run_id, data_hash, stage, self.handler_location())


def _copy(source: Path, target: Path) -> None:
    """Copy so that a reader of ``target`` never sees a half-written file."""
    replace_file(target, functools.partial(_copy_to, source))


def _copy_to(source: Path, temporary: str) -> None:
    shutil.copy2(source, temporary)

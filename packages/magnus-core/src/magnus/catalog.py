"""The catalog contract: moving files in and out of a run's data store."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import tempfile
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, ClassVar, Iterable, List, Optional, Sequence

from pydantic import Field

from magnus import defaults
from magnus.datastore.models import DataCatalog
from magnus.errors import CatalogError
from magnus.names import is_inside
from magnus.service import BaseService
from magnus.validation import WorkingFolder

# Folders of magnus's own state, by their default names: a put never copies from under them.
STATE_FOLDERS = frozenset({defaults.CATALOG_LOCATION, defaults.LOG_FOLDER})


@dataclass(frozen=True)
class FileToPut:
    """A file of the compute folder that a put records, and whether it must be copied."""

    path: Path
    relative: str  # its name in the catalog: its POSIX path under the compute folder
    data_hash: str
    unchanged: bool  # the run resumed (--use-cached) put the same content, already synced


class BaseCatalog(BaseService):
    """Moves data between the compute folder of a step and a per-run store.

    ``get`` and ``put`` take a name that may be a glob (``data/*.csv``, ``**/*``). What every
    implementation promises (``magnus.testing.CatalogContract`` checks it):

    - Nothing leaves its folder: names with ``..`` or absolute names are refused, and every path
      read or written, symlinks resolved (of files and of folders), lies inside the compute folder
      or the run's part of the catalog; anything else is a `CatalogError`.
    - ``compute_data_folder`` (here and in a step's ``catalog`` block) is a folder inside the
      working folder: it is refused when the configuration or pipeline is read.
    - A ``put`` never picks up the state of magnus: the catalog's own folder and the run log
      store's (``.catalog``, ``.run_log_store``, and the folders given to [`keep_out_of_puts`][])
      are skipped, so ``put: ["**/*"]`` from the working folder does not copy the catalog into
      itself run after run.
    """

    service_type: ClassVar[str] = "catalog"
    # False for catalogs that keep nothing; callers skip preparing files nobody will keep.
    keeps_data: ClassVar[bool] = True

    compute_data_folder: WorkingFolder = Field(
        default=defaults.COMPUTE_DATA_FOLDER,
        description=(
            "Where steps read and write their files (a step's catalog block may name another): "
            "a folder inside the working folder."
        ),
    )

    @functools.cached_property
    def _kept_out(self) -> List[str]:
        return []

    def keep_out_of_puts(self, paths: Iterable[str]) -> None:
        """Files and folders of other services' state (a run log store's ``log_folder``, an SQLite
        database) that puts skip."""
        self._kept_out.extend(paths)

    def skipped_folders(self) -> List[str]:
        """The folders a ``put`` never copies from: magnus's default state folders, this catalog's own
        ([`local_paths`][magnus.service.BaseService.local_paths]) and those given to [`keep_out_of_puts`][]."""
        return [defaults.CATALOG_LOCATION, defaults.LOG_FOLDER, *self.local_paths(), *self._kept_out]

    def files_to_put(self, folder: Path, name: str) -> List[Path]:
        """Files of the compute ``folder`` matching ``name`` that a put copies (state folders skipped).

        Raises:
            CatalogError: nothing matched, the name leaves the folder, or a symlink leads out of it.
        """
        skipped = [Path(state).resolve() for state in self.skipped_folders()]
        return matching_files(folder, name, f"compute folder {folder}", skipped)

    def planned_puts(
        self, folder: Path, name: str, synced_catalogs: Optional[Sequence[DataCatalog]] = None
    ) -> List[FileToPut]:
        """``files_to_put`` with each file's hash, marked unchanged when the run resumed put it as it is.

        A catalog copies only the changed ones and records them all.
        """
        already = {entry.name: entry.data_hash for entry in synced_catalogs or () if entry.stage == "put"}
        planned = []
        for file in self.files_to_put(folder, name):
            relative = file.relative_to(folder).as_posix()
            data_hash = sha256_of(file)
            planned.append(FileToPut(file, relative, data_hash, already.get(relative) == data_hash))
        return planned

    @abstractmethod
    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        """Copy what the run's catalog holds under ``name`` into the compute folder.

        Returns one entry per file copied, with stage ``get``.

        Raises:
            CatalogError: nothing matched ``name`` or a path would leave its folder.
        """

    def put(
        self,
        name: str,
        run_id: str,
        compute_data_folder: str = "",
        synced_catalogs: List[DataCatalog] | None = None,
    ) -> List[DataCatalog]:
        """Copy files of the compute folder matching ``name`` into the run's catalog.

        Returns one entry per file with its hash and stage ``put``. Files listed in
        ``synced_catalogs`` with an unchanged hash are not copied again ([`copy_in`][] copies the
        others).

        Raises:
            CatalogError: nothing matched ``name`` or a path would leave its folder.
        """
        if not self.keeps_data:
            return []
        planned = self.planned_puts(Path(compute_data_folder or self.compute_data_folder), name, synced_catalogs)
        self.copy_in([item for item in planned if not item.unchanged], run_id)
        return [
            catalog_entry(item.relative, run_id, item.data_hash, "put", self.handler_location()) for item in planned
        ]

    def copy_in(self, files: Sequence[FileToPut], run_id: str) -> None:
        """Copy ``files`` of the compute folder into the run's catalog, each at its ``relative`` path.

        Raises:
            CatalogError: a path would leave the run's folder.
        """
        raise NotImplementedError(f"catalog {self.service_name} keeps no data")

    def handler_location(self) -> str:
        """Where the catalog is, as its run log entries record it (``catalog_handler_location``)."""
        return ""

    def put_data(self, name: str, data: bytes, run_id: str) -> List[DataCatalog]:
        """Put ``data`` (bytes made by magnus, such as a step's execution log) as file ``name``.

        The default writes it to a scratch folder and puts it from there; catalogs that can write
        into their store directly override this.
        """
        with tempfile.TemporaryDirectory(prefix="magnus-put-") as scratch:
            (Path(scratch) / name).write_bytes(data)
            return self.put(name, run_id, scratch)

    def put_file(self, name: str, source: Path, run_id: str) -> List[DataCatalog]:
        """Put the file ``source`` (made by magnus, such as a step's execution log, of any size) as
        file ``name``: copied as it is read, never whole in memory.

        The default links (or copies) it into a scratch folder as ``name`` and puts it from there;
        catalogs that can copy into their store directly override this.
        """
        import shutil

        with tempfile.TemporaryDirectory(prefix="magnus-put-") as scratch:
            target = Path(scratch) / name
            try:
                os.link(source, target)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(source, target)
            return self.put(name, run_id, scratch)

    def claim(self, run_id: str) -> None:
        """Make the run's part of the catalog its own, when a new run begins (before anything is put).

        A run id can be given again (``--run-id``, an in-memory run log that forgets runs): the new
        run must not read what an earlier run with that id put. Of two runs claiming one id at once,
        exactly one succeeds. Catalogs that keep nothing claim nothing.

        Raises:
            CatalogClaimedError: the run's part of the catalog exists already.
        """

    @abstractmethod
    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        """Make what ``previous_run_id`` put available to ``run_id`` (for ``--use-cached``)."""

    def copy_between_runs(self, entries: Sequence[DataCatalog], previous_run_id: str, run_id: str) -> List[DataCatalog]:
        """Copy the files of ``entries`` (what a step of ``previous_run_id`` put) into ``run_id``'s part
        of the catalog, as a reused step's outputs; one ``put`` entry per file, with its hash.

        The default gets them into a scratch folder and puts them from there; catalogs that can copy
        inside their store (a local copy; server-side on an object store) override it.

        Raises:
            CatalogError: a file is not there any more (the reuse is abandoned: the step runs).
        """
        names = sorted({entry.name for entry in entries})
        if not self.keeps_data or not names:
            return []
        copied: List[DataCatalog] = []
        with tempfile.TemporaryDirectory(prefix="magnus-reuse-") as scratch:
            for name in names:
                self.get(escaped_pattern(name), previous_run_id, scratch)
            for name in names:
                copied.extend(self.put(escaped_pattern(name), run_id, scratch))
        return copied


class DoNothingCatalog(BaseCatalog):
    """No catalog: gets and puts are accepted and nothing is moved.

    Files a step writes stay where the step wrote them.
    """

    service_name: ClassVar[str] = "do-nothing"
    keeps_data: ClassVar[bool] = False

    def get(self, name: str, run_id: str, compute_data_folder: str = "") -> List[DataCatalog]:
        return []

    def sync_between_runs(self, previous_run_id: str, run_id: str) -> None:
        return None


# ---- what every catalog that copies files shares --------------------------------------------------
def escaped_pattern(path: str) -> str:
    """A file's path as a pattern matching it alone (glob characters in it taken literally)."""
    return "".join(f"[{character}]" if character in "*?[" else character for character in path)


def checked_pattern(name: str) -> str:
    """The glob pattern ``name`` in posix form, refused when it could reach outside its folder.

    Raises:
        CatalogError: ``name`` is empty, absolute or holds ``..``.
    """
    pattern = PurePosixPath(name.replace("\\", "/"))
    if not name.strip() or pattern.is_absolute() or ".." in pattern.parts:
        raise CatalogError(f"'{name}' must be a path inside the folder (no absolute paths, no '..')")
    return str(pattern)


def matching_files(folder: Path, name: str, where: str, skipped: Sequence[Path] = ()) -> List[Path]:
    """Files under ``folder`` matching ``name`` (a pathlib glob); symlinks must resolve inside ``folder``.

    Files in a ``skipped`` folder (resolved paths) or under a folder named like magnus's state
    folders are left out.

    Raises:
        CatalogError: nothing matched (naming ``where``), or a match leads out of ``folder``.
    """
    pattern = checked_pattern(name)
    root = folder.resolve()
    files = []
    for path in sorted(folder.glob(pattern)):
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            raise CatalogError(f"'{path}' leads outside {folder} (through a symlink); refused")
        if STATE_FOLDERS.intersection(path.relative_to(folder).parts[:-1]):
            continue
        if any(resolved.is_relative_to(state) for state in skipped):
            continue
        if resolved.is_file():
            files.append(path)
    if not files:
        raise CatalogError(f"nothing matches '{name}' in the {where}")
    return files


def matches(pattern: str, relative: str) -> bool:
    """Whether the file ``relative`` (posix, relative to the searched folder) matches ``pattern``.

    The rules of :meth:`pathlib.Path.glob` for files, for stores listed as names rather than
    walked as folders: ``*``, ``?`` and ``[...]`` match within one part, a ``**`` part matches any
    number of folders (none included), and a pattern ending in ``**`` names folders, not files.
    """
    return _match_parts(checked_pattern(pattern).split("/"), relative.split("/"))


def _match_parts(pattern: List[str], parts: List[str]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        if not rest:
            return False  # pathlib: a trailing '**' yields folders only
        return any(_match_parts(rest, parts[index:]) for index in range(len(parts)))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match_parts(rest, parts[1:])


def confined(folder: Path, relative: Path, what: str) -> Path:
    """``folder / relative``, refused when a symlinked folder on the way leads outside ``folder``.

    The file itself may be a symlink: :func:`replace_file` replaces the link, never writes through it.

    Raises:
        CatalogError: naming ``what`` (``compute folder``, ``catalog``) and the path.
    """
    path = folder / relative
    if len(relative.parts) > 1 and not is_inside(path.parent, folder):  # a file right in ``folder`` is in it
        raise CatalogError(f"'{path}' leads outside the {what} {folder} (through a symlinked folder); refused")
    return path


def replace_file(target: Path, write: Callable[[str], None]) -> None:
    """Make ``target`` by ``write(temporary_path)`` then a rename: a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's content, read in blocks (the hash data catalogs record)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def catalog_entry(name: str, run_id: str, data_hash: str, stage: str, location: str) -> DataCatalog:
    """The run log's record of one file got or put: ``<run_id>/<name>`` in the catalog at ``location``."""
    return DataCatalog(
        name=name,
        data_hash=data_hash,
        catalog_relative_path=f"{run_id}/{name}",
        catalog_handler_location=location,
        stage=stage,
    )

"""Where a chunked run log's files are kept: a local folder, or an object store reached through fsspec.

The store needs seven operations of its storage, each with one promise:

- ``write``: replace a file so that a reader sees the old content or the new, never half;
- ``create``: create a file unless it exists; of concurrent creators exactly one succeeds (the
  run-id claim);
- ``read``/``read_listed``: a file's bytes (of files a listing found), None when it is not there;
- ``is_file``, ``list`` (``FileNotFoundError`` for a folder that holds nothing) and ``version``
  (what identifies a file's content without reading it, to reuse a parse).

:class:`LocalFiles` keeps them with the operating system: temp file and rename, a hard link for
the claim, fsync when durable. It never follows a link out of ``log_folder``: a folder on the way
to a part must resolve inside it, and a part that is a symlink is refused (the store makes none),
so a link planted in a run's folder neither reads nor shows a file elsewhere.

:class:`ObjectFiles` keeps them on an object store, which has no rename: every part is one
object put whole (a PUT is atomic: readers see the old object or the new), and the claim is a
conditional put (``If-None-Match: *``: S3 refuses it with 412 when the key exists, atomically on
the server). A store whose backend cannot put conditionally falls back to fsspec's
check-then-put, which two creators racing within one round trip could both pass (see the package
README).
"""

from __future__ import annotations

import errno
import hashlib
import os
from typing import Any, Dict, Hashable, List, NamedTuple, Optional, Protocol, Set, Tuple

from magnus.atomic import create_atomically, write_atomically
from magnus.datastore.decoding import Unreadable
from magnus.errors import RunLogError
from magnus.names import is_inside, usable_folder
from magnus.object_store import StoreFolder
from magnus_runlog_chunked.recent import Recent

# How many parts an object store's reader keeps with their ETag: a follower of a map of thousands of
# items reads again only what changed; a few KB each, so tens of MB at most.
READ_MEMORY = 20_000

# A content's identity, and when the file last changed (ns) for identities a quick rewrite could repeat.
Version = Tuple[Hashable, Optional[int]]


class Entry(Protocol):
    """A file or folder found by :meth:`Storage.list` (``os.DirEntry`` has this shape)."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str: ...


class Storage(Protocol):
    """The operations of a chunked store's files (see the module's docstring for their promises)."""

    def run_folder(self, log_folder: str, run_id: str) -> str: ...

    def prepare(self, log_folder: str, field: str) -> None: ...

    def is_file(self, path: str) -> bool: ...

    def read(self, path: str) -> Optional[bytes]: ...

    def read_listed(self, entries: List[Any]) -> Dict[str, Optional[bytes]]: ...

    def write(self, path: str, data: bytes, durable: bool) -> None: ...

    def create(self, path: str, data: bytes) -> None: ...

    def list(self, folder: str) -> List[Any]: ...

    def version(self, entry: Any) -> Optional[Version]: ...


class LocalFiles:
    """A folder of this machine: writes are renames, the claim a hard link, fsync when durable.

    Every path it is given lies under ``root`` (``log_folder``) by construction; what it checks is
    that no symlink leads it elsewhere. A folder is checked (symlinks resolved) once per process,
    a part file on every read by opening it without following a link: no cost per read.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._inside: Set[str] = set()  # folders seen to resolve inside root

    def run_folder(self, log_folder: str, run_id: str) -> str:
        folder = os.path.join(log_folder, run_id)
        if not is_inside(folder, log_folder):
            raise RunLogError(f"'{folder}' leads outside {log_folder} (a symlink); refused")
        return folder

    def prepare(self, log_folder: str, field: str) -> None:
        usable_folder(log_folder, field)

    def is_file(self, path: str) -> bool:
        self._confine_reading(os.path.dirname(path))
        return os.path.isfile(path)

    def read(self, path: str) -> Optional[bytes]:
        """The part's bytes; None when not written.

        Raises:
            Unreadable: the part is a symlink, lies in a folder leading out of ``log_folder``, or
                cannot be read.
        """
        self._confine_reading(os.path.dirname(path))
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, NotADirectoryError):  # not written, or log_folder is a file
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Unreadable(f"{os.path.basename(path)} is a symlink: refused") from None
            raise Unreadable(f"{os.path.basename(path)} cannot be read: {exc.strerror}") from None
        with open(fd, "rb") as handle:
            try:
                return handle.read()
            except OSError as exc:  # a folder named like a part
                raise Unreadable(f"{os.path.basename(path)} cannot be read: {exc.strerror}") from None

    def read_listed(self, entries: List[Any]) -> Dict[str, Optional[bytes]]:
        return {entry.path: self.read(entry.path) for entry in entries}

    def write(self, path: str, data: bytes, durable: bool) -> None:
        self._confine_writing(os.path.dirname(path))
        write_atomically(path, data, durable=durable)

    def create(self, path: str, data: bytes) -> None:
        self._confine_writing(os.path.dirname(path))
        create_atomically(path, data)

    def list(self, folder: str) -> List[Any]:
        self._confine_reading(folder)
        return list(os.scandir(folder))

    def _confine_reading(self, folder: str) -> None:
        problem = self._outside(folder)
        if problem:
            raise Unreadable(problem)

    def _confine_writing(self, folder: str) -> None:
        problem = self._outside(folder)
        if problem:
            raise RunLogError(problem)

    def _outside(self, folder: str) -> str:
        """Why ``folder`` is refused ('' when it resolves inside ``root``; checked once per folder)."""
        if folder in self._inside:
            return ""
        if not is_inside(folder, self.root):
            return f"'{folder}' leads outside {self.root} (a symlink): refused"
        self._inside.add(folder)
        return ""

    def version(self, entry: Any) -> Optional[Version]:
        """Inode, size and times: a write is a rename, so a new version is a new inode with new times."""
        try:
            stat = entry.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns), stat.st_ctime_ns


class ObjectEntry(NamedTuple):
    name: str
    path: str
    etag: str


class ObjectFiles:
    """A folder of an object store (``s3://``, ``gs://``, ``az://``, ``memory://``): one object per file."""

    def __init__(self, folder: StoreFolder, protocol: str) -> None:
        self.folder = folder
        self._read: Recent[str, Tuple[str, bytes]] = Recent(READ_MEMORY)  # path: (ETag, content)
        # Small JSON objects: s3fs reads each in one GET, with no size check for a parallel read.
        # Asked per read, not set on the file system: the catalog and the store of one location then
        # share one file system and its client (a second costs ~0.1 s of a job's start).
        self._whole: Dict[str, Any] = {"max_concurrency": 1} if protocol in ("s3", "s3a") else {}

    def run_folder(self, log_folder: str, run_id: str) -> str:
        return self.folder.path(run_id)  # no symlinks in a store: the checked run id is the confinement

    def prepare(self, log_folder: str, field: str) -> None:
        return None  # no folders to make; a missing bucket is the error of the first put

    def is_file(self, path: str) -> bool:
        """One ranged GET of the first byte (a part is never empty): a HEAD that misses costs a listing more."""
        try:
            self.folder.fs.cat_file(path, start=0, end=1)
        except FileNotFoundError:
            return False
        return True

    def read(self, path: str) -> Optional[bytes]:
        try:
            return bytes(self.folder.fs.cat_file(path, **self._whole))
        except FileNotFoundError:
            return None

    def read_listed(self, entries: List[Any]) -> Dict[str, Optional[bytes]]:
        """What was read before under the ETag the listing shows is not fetched again; the rest in
        one batch call (s3fs fetches concurrently). A file gone meanwhile reads as None.

        What makes following a run cheap: a follower reads the whole run log every few tenths of a
        second, and between two reads only the parts of the steps running changed. A file changed
        after its listing is read as it is now: never older than the listing showed.
        """
        contents: Dict[str, Optional[bytes]] = {}
        changed: List[ObjectEntry] = []
        for entry in entries:
            kept = self._read.get(entry.path)
            if kept is not None and entry.etag and kept[0] == entry.etag:
                contents[entry.path] = kept[1]
            else:
                changed.append(entry)
        paths = [entry.path for entry in changed]
        if len(paths) == 1:
            fetched = {paths[0]: self.read(paths[0])}
        elif paths:
            nothing: List[Optional[int]] = [None] * len(paths)
            found = self.folder.fs.cat_ranges(paths, nothing, nothing, on_error="return", **self._whole)
            fetched = {path: _bytes_or_none(content) for path, content in zip(paths, found, strict=True)}
        else:
            fetched = {}
        for entry in changed:
            content = contents[entry.path] = fetched[entry.path]
            if content is not None and entry.etag and _md5(content) == entry.etag.strip('"'):
                self._read[entry.path] = (entry.etag, content)
        return contents

    def write(self, path: str, data: bytes, durable: bool) -> None:
        self.folder.fs.pipe_file(path, data)  # one PUT: atomic and durable once acknowledged

    def create(self, path: str, data: bytes) -> None:
        """A conditional put: the store refuses it when the key exists (``FileExistsError``)."""
        self.folder.fs.pipe_file(path, data, mode="create")

    def list(self, folder: str) -> List[Any]:
        entries = self.folder.fs.ls(folder, detail=True)
        return [_entry(info) for info in entries]

    def version(self, entry: Any) -> Optional[Version]:
        """The ETag: a hash of the content, so an equal ETag is the same parse (None where there is none)."""
        return (entry.etag, None) if entry.etag else None


def _entry(info: Dict[str, Any]) -> ObjectEntry:
    path = str(info["name"]).rstrip("/")
    return ObjectEntry(name=path.rsplit("/", 1)[-1], path=path, etag=str(info.get("ETag") or ""))


def _md5(content: bytes) -> str:
    """S3's ETag of an object put whole: what proves the content kept is the version listed."""
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def _bytes_or_none(value: Any) -> Optional[bytes]:
    return bytes(value) if isinstance(value, (bytes, bytearray)) else None

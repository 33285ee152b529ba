"""Writing files so that a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Union

_counter = itertools.count()


def write_atomically(path: Union[str, Path], data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename.

    The rename is what makes the write atomic: a reader sees the old file or the new one. With
    ``durable`` the data is also fsynced first, so it survives a machine crash, not only a
    process crash. The temp name is unique per process and thread, so concurrent writers of the
    same file never share one.
    """
    target = os.fspath(path)
    temporary = _write_temporary(target, data, durable)
    try:
        os.replace(temporary, target)
    except BaseException:
        _unlink(temporary)
        raise


def create_atomically(path: Union[str, Path], data: bytes, *, durable: bool = True) -> None:
    """Create ``path`` holding ``data`` unless it exists: of concurrent creators, exactly one succeeds.

    The data is written to a temp file first and hard-linked to ``path`` (a link fails when the
    name exists), so the winner's file is complete the moment it appears. Where hard links are not
    supported the file is created with ``O_EXCL`` and written in place.

    Raises:
        FileExistsError: ``path`` exists (another creator won); it is left untouched.
    """
    target = os.fspath(path)
    temporary = _write_temporary(target, data, durable)
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FUSE file systems)
        _write_exclusively(target, data, durable)
    finally:
        _unlink(temporary)


def _write_temporary(target: str, data: bytes, durable: bool) -> str:
    """A new temp file beside ``target`` holding ``data``; its name."""
    temporary = f"{target}.{os.getpid()}-{threading.get_ident()}-{next(_counter)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(fd, data, durable)
    except BaseException:
        _unlink(temporary)
        raise
    return temporary


def _write_exclusively(target: str, data: bytes, durable: bool) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    _write_all(fd, data, durable)


def _write_all(fd: int, data: bytes, durable: bool) -> None:
    """Write ``data`` to ``fd`` (fsynced when ``durable``) and close it."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def append_record(path: Path, line: bytes) -> None:
    """Append one newline-terminated record with a single O_APPEND write.

    One ``write`` call per record is what keeps concurrent appenders from interleaving inside a
    record on a local file system.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)

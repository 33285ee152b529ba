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
    temporary = f"{target}.{os.getpid()}-{threading.get_ident()}-{next(_counter)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temporary, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


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

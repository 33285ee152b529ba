"""What an attempt prints, kept for the catalog: in memory while it is small, in a file past that.

Most steps print a few lines: they are kept in memory and put in the catalog as bytes, with no
file of magnus's own written and read back. A step printing more than :data:`IN_MEMORY_BYTES` goes
on in a temporary file, put in the catalog from there: memory stays bounded whatever it prints.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, TextIO

if TYPE_CHECKING:
    from magnus.catalog import BaseCatalog
    from magnus.datastore.models import DataCatalog

# What an attempt may print before its log moves from memory to a file (characters).
IN_MEMORY_BYTES = 1 << 20


class ExecutionLog(io.TextIOBase):
    """A text sink for :func:`magnus.capture.captured_output`: memory up to a limit, then a file."""

    def __init__(self, in_memory: int = IN_MEMORY_BYTES) -> None:
        super().__init__()
        self._limit = in_memory
        self._memory: Optional[io.StringIO] = io.StringIO()
        self._size = 0
        self._folder = ""
        self._file: Optional[TextIO] = None

    @property
    def path(self) -> Optional[Path]:
        """The file holding the log once it outgrew memory (None before, and once closed)."""
        return Path(self._file.name) if self._file is not None else None

    def write(self, text: str) -> int:
        if self._memory is not None:
            self._size += len(text)
            if self._size <= self._limit:
                return self._memory.write(text)
            self._spill()
        assert self._file is not None
        return self._file.write(text)

    def _spill(self) -> None:
        """Move what is held to a file of a folder of its own; later writes go there."""
        assert self._memory is not None
        self._folder = tempfile.mkdtemp(prefix="magnus-log-")
        self._file = open(Path(self._folder) / "execution.log", "w", encoding="utf-8", errors="backslashreplace")
        self._file.write(self._memory.getvalue())
        self._memory = None

    def put(self, catalog: "BaseCatalog", name: str, run_id: str) -> List["DataCatalog"]:
        """Put what was written in ``catalog`` as file ``name`` of run ``run_id``."""
        if self._memory is not None:
            data = self._memory.getvalue().encode("utf-8", "backslashreplace")
            return catalog.put_data(name, data, run_id)
        assert self._file is not None
        self._file.flush()
        return catalog.put_file(name, Path(self._file.name), run_id)

    def close(self) -> None:
        """Forget what was written; the file, if any, is removed."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # what could not be flushed is lost with the file
                pass
            Path(self._file.name).unlink(missing_ok=True)
            os.rmdir(self._folder)
            self._file = None
        self._memory = None
        super().close()


__all__ = ["IN_MEMORY_BYTES", "ExecutionLog"]

"""Capturing what a step prints, while still showing it on the console."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Iterator, TextIO


class _Tee(io.TextIOBase):
    """Writes to the console stream and to a buffer."""

    def __init__(self, console: TextIO, buffer: io.StringIO) -> None:
        self._console = console
        self._buffer = buffer

    def write(self, text: str) -> int:
        self._buffer.write(text)
        return self._console.write(text)

    def flush(self) -> None:
        self._console.flush()

    def isatty(self) -> bool:
        return self._console.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._console, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._console.fileno()


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Within the block, stdout and stderr go to the console and into the yielded buffer."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)), contextlib.redirect_stderr(_Tee(sys.stderr, buffer)):
        yield buffer

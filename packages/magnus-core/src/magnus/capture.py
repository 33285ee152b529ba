"""Capturing what a step prints, while still showing it on the console."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Callable, Iterator, TextIO


class _Tee(io.TextIOBase):
    """Writes to the console stream and to a buffer, secrets masked in both."""

    def __init__(self, console: TextIO, buffer: io.StringIO, redact: Callable[[str], str]) -> None:
        self._console = console
        self._buffer = buffer
        self._redact = redact

    def write(self, text: str) -> int:
        text = self._redact(text)
        self._buffer.write(text)
        self._console.write(text)
        return len(text)

    def flush(self) -> None:
        self._console.flush()

    def isatty(self) -> bool:
        return self._console.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._console, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._console.fileno()


def _unchanged(text: str) -> str:
    return text


@contextlib.contextmanager
def captured_output(redact: Callable[[str], str] = _unchanged) -> Iterator[io.StringIO]:
    """Within the block, stdout and stderr go to the console and into the yielded buffer.

    ``redact`` is applied to every write first (it masks secret values).
    """
    buffer = io.StringIO()
    out, err = _Tee(sys.stdout, buffer, redact), _Tee(sys.stderr, buffer, redact)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield buffer

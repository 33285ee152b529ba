"""Capturing what a step prints and logs, while still showing it on the console, secrets masked.

Within :func:`captured_output`:

- ``sys.stdout`` and ``sys.stderr`` write to the console and into one sink (the step's
  execution log: a file, written as the step prints, so memory stays bounded whatever it prints;
  none when the log is not kept);
- :mod:`logging` handlers that write to the console (a ``StreamHandler`` on ``sys.stdout`` or
  ``sys.stderr``, such as the one ``logging.basicConfig`` or the CLI set up before the step)
  write through the same streams, so what a task logs lands in its execution log too; they are
  given back their own streams afterwards;
- with a redactor, every log record made (by any logger, for any handler: files and services
  too) carries its message, exception text and stack already masked, and both streams mask what
  is written. A stream holds back the end of a write that could begin a secret (only the longest
  such end, never more) until the next write or the end of the block, so a secret written in
  pieces is masked whole; a ``flush`` between the pieces writes out all but that end (a task that
  flushes to show progress sees it at once, unless it ends with the start of a secret).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from typing import Any, Iterator, List, Optional, Protocol, TextIO, Tuple

from magnus.redaction import Redactor


class Sink(Protocol):
    """Where captured text goes besides the console: anything with ``write`` (a file, a StringIO,
    an execution log)."""

    def write(self, text: str, /) -> int: ...


class _Tee(io.TextIOBase):
    """Writes to the console stream and to a sink, secrets masked in both."""

    def __init__(self, console: TextIO, sink: Optional[Sink], redactor: Optional[Redactor]) -> None:
        self._console = console
        self._sink = sink
        self._redactor = redactor
        self._held = ""  # the end of the last write, which could begin a secret

    def write(self, text: str) -> int:
        redactor = self._redactor
        if not redactor:
            self._emit(text)
            return len(text)
        pending = redactor.redact(self._held + text)
        held = redactor.unfinished(pending)
        self._held = pending[len(pending) - held :] if held else ""
        self._emit(pending[: len(pending) - held])
        return len(text)

    def _emit(self, text: str) -> None:
        if text:
            if self._sink is not None:
                try:
                    self._sink.write(text)
                except OSError:  # a full disk: the log ends here, the task goes on
                    self._sink = None
            self._console.write(text)

    def release(self) -> None:
        """Write what was held back (at the end of the block: no write can complete it into a secret now)."""
        held, self._held = self._held, ""
        self._emit(held)

    def flush(self) -> None:
        """Flush the console; what is held back stays held (the next write may complete a secret)."""
        self._console.flush()

    def isatty(self) -> bool:
        return self._console.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._console, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._console.fileno()


@contextlib.contextmanager
def captured_output(redactor: Optional[Redactor] = None, sink: Optional[Sink] = None) -> Iterator[None]:
    """Within the block, stdout, stderr and console logging go to the console and into ``sink``.

    ``sink`` (an open file, a :class:`io.StringIO`; None: the console only) receives each write
    as it is made: nothing is kept here. With ``redactor``, its secrets are masked in everything
    written and in every log record.
    """
    out, err = _Tee(sys.stdout, sink, redactor), _Tee(sys.stderr, sink, redactor)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with _console_logging_into(out, err), _masked_log_records(redactor):
                yield
    finally:
        out.release()
        err.release()


@contextlib.contextmanager
def _console_logging_into(out: _Tee, err: _Tee) -> Iterator[None]:
    """Point logging's console handlers at the step's streams for the block."""
    replaced = {id(out._console): out, id(err._console): err}
    swapped: List[Tuple[logging.StreamHandler[Any], Any]] = []
    for handler in _stream_handlers():
        stream = getattr(handler, "stream", None)
        if id(stream) in replaced:
            swapped.append((handler, handler.setStream(replaced[id(stream)])))
    try:
        yield
    finally:
        for handler, stream in reversed(swapped):
            handler.setStream(stream)


def _stream_handlers() -> List["logging.StreamHandler[Any]"]:
    """Every ``StreamHandler`` attached to a logger (the root's and each named logger's)."""
    loggers: List[Any] = [logging.getLogger()]
    loggers += [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    handlers: List[logging.StreamHandler[Any]] = []
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler not in handlers:
                handlers.append(handler)
    return handlers


@contextlib.contextmanager
def _masked_log_records(redactor: Optional[Redactor]) -> Iterator[None]:
    """For the block, log records are made with their message, exception and stack masked."""
    if redactor is None:
        yield
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _masked(previous(*args, **kwargs), redactor)

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        if logging.getLogRecordFactory() is factory:  # unless the task installed its own meanwhile
            logging.setLogRecordFactory(previous)


def _masked(record: logging.LogRecord, redactor: Redactor) -> logging.LogRecord:
    if not redactor:
        return record
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):  # a bad format: logging reports it when the record is handled
        return record
    record.msg, record.args = redactor.redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redactor.redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    return record

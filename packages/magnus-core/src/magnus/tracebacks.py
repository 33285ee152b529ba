"""Tracebacks of failed tasks that show the user's code, not magnus's.

A task's function is called through a few frames of magnus (the step runner, the task type, the
import machinery); a person fixing their function needs only their own frames. :func:`format_failure`
drops magnus's frames and the frames that lead into the user's code (the standard library's,
before the first frame of the user's), keeps every frame from the user's code on (a library it
called included), and shows a magnus error that no user frame led to (a parameter not set, a
module not found) as its one line. ``--log-level DEBUG`` (or ``MAGNUS_DEBUG=1``) shows it all.
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import List, Optional, Set, Tuple

from magnus import defaults
from magnus.errors import MagnusError
from magnus.plugins import plugin_packages
from magnus.terminal import for_terminal

# Frames of files here are magnus's own.
_MAGNUS = str(Path(__file__).resolve().parent) + os.sep
_PATHS = sysconfig.get_paths()
_STANDARD_LIBRARY = tuple(str(Path(_PATHS[name]).resolve()) + os.sep for name in ("stdlib", "platstdlib"))

# Installed packages live under the standard library's folder too; they are not on the way in.
_INSTALLED = f"{os.sep}site-packages{os.sep}"
_DEBIAN = f"{os.sep}dist-packages{os.sep}"


def debugging() -> bool:
    """Whether full tracebacks are wanted: the magnus logger at DEBUG, or ``MAGNUS_DEBUG`` set."""
    if os.environ.get(defaults.ENV_DEBUG, "") not in ("", "0"):
        return True
    return logging.getLogger(defaults.LOGGER_NAME).isEnabledFor(logging.DEBUG)


def format_failure(exc: BaseException) -> str:
    """The traceback of ``exc`` as the user should see it (ends with a newline).

    The messages of the exceptions are shown through :func:`~magnus.terminal.for_terminal`: a
    message holding what a task was given (an escape sequence, a newline and a forged line)
    stays the one line it ends the traceback with.
    """
    shown = traceback.TracebackException.from_exception(exc)
    if not debugging() and not _Frames(_magnus_folders()).keep_users(shown, set()) and isinstance(exc, MagnusError):
        return f"{type(exc).__name__}: {for_terminal(str(exc))}\n"
    _escape_messages(shown, set())
    return "".join(shown.format())


def _escape_messages(shown: Optional[traceback.TracebackException], seen: Set[int]) -> None:
    """Escape the message of ``shown`` and of the exceptions chained to it (``_str``: what
    ``format`` writes after the exception's type)."""
    if shown is None or id(shown) in seen:
        return
    seen.add(id(shown))
    setattr(shown, "_str", for_terminal(str(getattr(shown, "_str", ""))))  # noqa: B010 - the one field holding it
    _escape_messages(shown.__cause__, seen)
    _escape_messages(shown.__context__, seen)


def _magnus_folders() -> Tuple[str, ...]:
    """The folders of magnus's code: core's, and those of the plugins loaded (a task type's frames
    between the step runner and the user's code are magnus's too)."""
    folders = {_MAGNUS}
    for package in plugin_packages():
        module = sys.modules.get(package)
        filename = getattr(module, "__file__", None)
        if filename:
            folders.add(str(Path(filename).resolve().parent) + os.sep)
    return tuple(folders)


class _Frames:
    """Which frames are magnus's, on the way into user code, or the user's own."""

    def __init__(self, magnus_folders: Tuple[str, ...]) -> None:
        self.magnus_folders = magnus_folders

    def is_magnus(self, filename: str) -> bool:
        return os.path.abspath(filename).startswith(self.magnus_folders)

    def leads_in(self, filename: str) -> bool:
        """A frame on the way into user code: magnus's, the standard library's, or frozen import machinery."""
        if filename.startswith("<frozen ") or self.is_magnus(filename):
            return True
        return filename.startswith(_STANDARD_LIBRARY) and _INSTALLED not in filename and _DEBIAN not in filename

    def keep_users(self, shown: Optional[traceback.TracebackException], seen: Set[int]) -> bool:
        """Drop the frames that are not the user's from ``shown`` and the exceptions chained to it.

        Returns whether any of them has a frame of the user's left.
        """
        if shown is None or id(shown) in seen:
            return False
        seen.add(id(shown))
        frames: List[traceback.FrameSummary] = list(shown.stack)
        while frames and self.leads_in(frames[0].filename):
            frames.pop(0)
        frames = [frame for frame in frames if not self.is_magnus(frame.filename)]
        shown.stack = traceback.StackSummary.from_list(frames)
        cause = self.keep_users(shown.__cause__, seen)
        shows_context = not shown.__suppress_context__  # `raise ... from None` hides it
        context = self.keep_users(shown.__context__, seen) if shows_context else False
        return bool(frames) or cause or context

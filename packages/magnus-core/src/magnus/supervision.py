"""Commands that run user code here do it in a child process that the command's own process watches.

A task can end the interpreter it runs in (``os._exit``, a segfault, the out-of-memory killer), and
whatever runs in that process ends with it: the walk, the recording of the step, the exit status
(``os._exit(0)`` would exit 0 with the run left ``PROCESSING``). So ``magnus execute`` and the
commands that run one step or one branch of a run fork once, at start ([`supervise`][]): the
child does the command as before, the parent (with only click imported) waits for it and exits
with its status. A child that did not end through the interpreter's normal exit is reported to
the caller of [`supervise`][] with the run and the step it was in, which the child keeps up to
date in a page of memory shared with the parent ([`step_started`][], [`step_ended`][]: a copy
into memory, no system call, nothing for the parent to drain while it waits).

Signals sent to the command's process (SIGTERM, SIGHUP, a SIGINT sent by a program) are passed
on to the child; a terminal's Ctrl-C reaches the child directly, as both share the terminal's
process group. Killing the parent with SIGKILL leaves the child running its command, as killing a
shell leaves its jobs: stop a run with SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import signal
import struct
from typing import Any, Dict, NamedTuple, Optional

_PAGE_BYTES = 1 << 16
_HEADER = struct.Struct("<BI")  # exited normally (0/1), length of the JSON report that follows
_WATCHED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD}
_SENT_BY_THE_KERNEL = 0x80  # si_code SI_KERNEL: a terminal's Ctrl-C; a process's kill() is 0 or below


class ChildEnded(NamedTuple):
    """How the supervised child ended: its wait status decoded, and what it last reported.

    ``normally``: it ended through the interpreter's exit (``sys.exit``, the end of the command),
    so ``exit_code`` is the command's own. Otherwise ``exit_code`` is what ``os._exit`` passed or
    ``signal`` the signal that killed it, and ``report`` says which run and step it was in.
    """

    normally: bool
    exit_code: Optional[int]
    signal: Optional[int]
    report: Dict[str, Any]

    def how(self) -> str:
        """How the process ended, in words: ``exited with code 0``, ``was killed by SIGSEGV``."""
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"was killed by {name}"
        return f"exited with code {self.exit_code}"

    @property
    def interrupted(self) -> bool:
        """Ended by a signal that stops a run as Ctrl-C does."""
        return self.signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Child:
    """The supervised child's end of the shared page (only that process writes it, not its own forks)."""

    def __init__(self, page: mmap.mmap) -> None:
        self.page = page
        self.pid = os.getpid()
        self.report: Dict[str, Any] = {}

    def write(self, **fields: Any) -> None:
        if os.getpid() != self.pid:
            return  # a worker forked by the child: its steps are watched by the pool that forked it
        self.report.update(fields)
        data = json.dumps(self.report).encode()[: _PAGE_BYTES - _HEADER.size]
        self.page[_HEADER.size : _HEADER.size + len(data)] = data
        self.page[: _HEADER.size] = _HEADER.pack(0, len(data))

    def exited_normally(self) -> None:
        if os.getpid() == self.pid:
            self.page[:1] = b"\x01"


_child: Optional[_Child] = None


def supervise() -> Optional[ChildEnded]:
    """Fork: in the child return None (it goes on with the command); in the parent wait for the child
    and return how it ended. Without ``fork`` (Windows) nothing is forked and None is returned."""
    global _child
    if not hasattr(os, "fork"):
        return None
    page = mmap.mmap(-1, _PAGE_BYTES)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        _child = _Child(page)
        atexit.register(_child.exited_normally)  # registered first, so it runs last
        return None
    try:
        status = _wait(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return _ended(status, page)


def _wait(pid: int) -> int:
    """Pass on the signals sent to this process until the child ends; its wait status."""
    while True:
        received = signal.sigwaitinfo(_WATCHED)
        if received.si_signo == signal.SIGCHLD:
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                return status
        elif received.si_signo != signal.SIGINT or received.si_code != _SENT_BY_THE_KERNEL:
            os.kill(pid, received.si_signo)


def _ended(status: int, page: mmap.mmap) -> ChildEnded:
    normally, length = _HEADER.unpack(page[: _HEADER.size])
    try:
        report = json.loads(page[_HEADER.size : _HEADER.size + length]) if length else {}
    except ValueError:  # cut short by the child's end: what it was doing is unknown
        report = {}
    code = os.waitstatus_to_exitcode(status)
    return ChildEnded(bool(normally), code if code >= 0 else None, -code if code < 0 else None, report)


def run_started(run_id: str, configuration_file: str) -> None:
    """Tell the supervising process which run this process works on, and where its services are
    configured (nothing when not supervised)."""
    if _child is not None:
        _child.write(run_id=run_id, configuration_file=configuration_file)


def step_started(name: str) -> None:
    """Tell the supervising process that user code of step ``name`` runs now."""
    if _child is not None:
        _child.write(step=name)


def step_ended() -> None:
    """Tell the supervising process that the step's user code is done (its end is being recorded)."""
    if _child is not None:
        _child.write(step="")

"""Forked worker processes walking the branches of a composite step, for the local executor.

Workers are forked from the walking process, so they inherit the run (parsed pipeline, services)
and need nothing pickled but a branch's number. A worker that dies before its branch ended
(killed, ``os._exit``) fails that branch only; the others run on to their end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import struct
import sys
import time
import traceback
from collections import deque
from types import FrameType
from typing import TYPE_CHECKING, Callable, Dict, NamedTuple, NoReturn, Optional, Sequence

from magnus import defaults
from magnus.errors import MagnusError

if TYPE_CHECKING:
    from magnus.nodes.composite import BranchRun
    from magnus.runtime.services import RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)
# True in a worker process: a worker runs the composites of its branch one branch after another.
_in_worker = False
# How long workers get to record that they were interrupted before they are killed.
INTERRUPT_GRACE_SECONDS = 10.0
# How often running workers are checked when none ended (a worker whose end went unnoticed).
_POLL_SECONDS = 1.0


def in_worker() -> bool:
    """Whether this process is a worker (whose nested branches run in turn, not in more workers)."""
    return _in_worker


class _Worker(NamedTuple):
    """A forked worker: its pid, the pipe it reads branch numbers from, the pipe it answers on."""

    pid: int
    tasks: int  # write end: a branch number to walk; closed when there is no more work
    results: int  # read end: each branch walked, as its number and status; end of file when the worker ended


class WorkerPool:
    """At most ``limit`` forked workers walking the branches, each worker one branch at a time.

    A worker inherits the run (parsed pipeline, services) and walks the branches it is handed by
    number, writing their steps to the store. Worker ends are seen on their answer pipes (end of
    file), without threads and without reaping anyone else's children. A worker that dies in a
    branch (``sys.exit`` outside a step, ``os._exit``, a signal, the OOM killer) does not stop
    the others: that branch, and the step it was running, are recorded FAIL, a new worker takes
    over the branches left, and the composite settles from the statuses as usual.

    On Ctrl-C every worker is asked to stop (SIGTERM, which a worker turns into
    ``KeyboardInterrupt``: its step is recorded ``interrupted``) and killed if it has not within
    :data:`INTERRUPT_GRACE_SECONDS`; then the interrupt goes on.
    """

    def __init__(self, services: "RunServices", run_branch: Callable[["BranchRun"], str], limit: int) -> None:
        self.services = services
        self.run_branch = run_branch
        self.limit = limit
        self.workers: Dict[int, _Worker] = {}  # by answer pipe
        self.busy: Dict[int, int] = {}  # answer pipe -> number of the branch its worker walks
        self.selector = selectors.DefaultSelector()

    def run(self, runs: Sequence["BranchRun"]) -> None:
        self.runs = runs
        self.waiting = deque(range(len(runs)))
        try:
            for _ in range(min(self.limit, len(runs))):
                self._hand_out(self._start())
            while self.workers:
                ready = [key.fd for key, _ in self.selector.select(_POLL_SECONDS)]
                for fd in ready:
                    self._answer(fd)
                if not ready:  # a worker may have ended while a process it forked holds its pipe
                    for fd in list(self.workers):
                        self._reap(fd, block=False)
        except BaseException:  # Ctrl-C (or a failure here): stop the workers, then let it go on
            self._stop()
            raise
        finally:
            self.selector.close()

    def _start(self) -> int:
        tasks_read, tasks_write = os.pipe()
        results_read, results_write = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the worker writes out what this process had buffered, again
        # Held until the worker has its own handlers: an interrupt in between would unwind this
        # process's frames in the worker (its traceback, its "Error: interrupted").
        signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
        if pid == 0:  # the worker: never returns
            for worker in self.workers.values():  # or a worker would never see the end of its pipe
                os.close(worker.tasks)
                os.close(worker.results)
            os.close(tasks_write)
            os.close(results_read)
            _serve(tasks_read, results_write, self.runs, self.run_branch)
        os.close(tasks_read)
        os.close(results_write)
        self.workers[results_read] = _Worker(pid, tasks_write, results_read)
        self.selector.register(results_read, selectors.EVENT_READ)
        return results_read

    def _hand_out(self, fd: int) -> None:
        """Give the idle worker of ``fd`` the next branch, or tell it there is no more work."""
        worker = self.workers[fd]
        if self.waiting:
            number = self.waiting.popleft()
            try:
                os.write(worker.tasks, _NUMBER.pack(number))
            except BrokenPipeError:  # it just ended: its end of file comes next, and a new worker
                self.waiting.appendleft(number)
                return
            self.busy[fd] = number
        elif worker.tasks >= 0:
            os.close(worker.tasks)
            self.workers[fd] = worker._replace(tasks=-1)

    def _answer(self, fd: int) -> None:
        """A worker walked its branch (it gets the next), or ended (it is replaced if work is left)."""
        answer = os.read(fd, _RESULT.size)
        if answer:
            self._walked(fd, answer)
            self._hand_out(fd)
            return
        self._reap(fd, block=True)
        if self.waiting:
            self._hand_out(self._start())

    def _walked(self, fd: int, answer: bytes) -> None:
        """The worker of ``fd`` walked a branch: reported to the run's observer here, where it counts."""
        self.busy.pop(fd, None)
        number, succeeded = _RESULT.unpack(answer)
        self.services.events.branch_ended(self.runs[number].name, defaults.SUCCESS if succeeded else defaults.FAIL)

    def _reap(self, fd: int, block: bool) -> None:
        """Collect the worker of ``fd`` if it ended; its unfinished branch fails."""
        worker = self.workers[fd]
        done, status = os.waitpid(worker.pid, 0 if block else os.WNOHANG)
        if not done:
            return
        del self.workers[fd]
        self.selector.unregister(fd)
        os.close(fd)
        if worker.tasks >= 0:
            os.close(worker.tasks)
        number = self.busy.pop(fd, None)
        if number is not None:
            self._lost(self.runs[number], os.waitstatus_to_exitcode(status))

    def _lost(self, run: "BranchRun", code: int) -> None:
        """A worker ended before its branch did: the branch fails, and the step it was running."""
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if code != _INTERRUPTED:
            logger.error("branch %s: its worker process %s before the branch ended; it is recorded FAIL", run.name, how)
        self.services.events.branch_ended(run.name, defaults.FAIL)
        store, run_id = self.services.run_log_store, self.services.run_id
        try:
            for step in store.get_branch_log(run.name, run_id).steps.values():
                if step.status == defaults.PROCESSING:  # the step the worker was running
                    store.update_step_log_status(step.internal_name, defaults.FAIL, run_id, f"its worker process {how}")
            store.update_branch_log_status(run.name, defaults.FAIL, run_id)
        except MagnusError as exc:
            logger.error("branch %s: could not be recorded FAIL: %s", run.name, exc)

    def _stop(self) -> None:
        """Interrupt every worker, wait a little, kill those still running; record their branches."""
        self.waiting.clear()
        for worker in self.workers.values():
            _signal(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
        try:
            while self.workers and time.monotonic() < deadline:
                for key, _ in self.selector.select(max(0.0, deadline - time.monotonic())):
                    answer = os.read(key.fd, _RESULT.size)
                    if not answer:
                        self._reap(key.fd, block=True)
                    else:
                        self._walked(key.fd, answer)
        finally:
            for fd, worker in list(self.workers.items()):
                _signal(worker.pid, signal.SIGKILL)
                self._reap(fd, block=True)


# Branch numbers travel to the workers as 4 bytes, and back with a byte saying whether it succeeded.
_NUMBER = struct.Struct("!I")
_RESULT = struct.Struct("!I?")
# A worker's exit code when it was interrupted (its steps recorded that themselves).
_INTERRUPTED = 130
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def _serve(tasks: int, results: int, runs: Sequence["BranchRun"], run_branch: Callable[["BranchRun"], str]) -> NoReturn:
    """In a forked worker: walk the branches handed out until there are no more, then leave the process.

    Never returns into the caller's frames (they belong to the walking process). Ctrl-C at a
    terminal reaches every process of the group: a worker ignores it and waits for the SIGTERM
    the walking process sends, so each worker is interrupted exactly once, and prints no
    traceback for it (nor for a magnus error, shown as one line).
    """
    global _in_worker
    _in_worker = True
    code = 1
    try:
        signal.signal(signal.SIGINT, _ignore)  # a handler, not SIG_IGN: programs a step starts keep Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # blocked by the parent around the fork
        while True:
            message = _read_exactly(tasks, _NUMBER.size)
            if not message:
                break
            number = _NUMBER.unpack(message)[0]
            status = run_branch(runs[number])
            os.write(results, _RESULT.pack(number, status == defaults.SUCCESS))
        code = 0
    except KeyboardInterrupt:
        code = _INTERRUPTED
    except MagnusError as exc:  # the exit code fails the branch
        print(f"Error: {exc}", file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a bug: shown, and the exit code fails the branch
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd``, or b"" at its end."""
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def _ignore(signum: int, frame: Optional[FrameType]) -> None:
    """Ctrl-C in a worker: the walking process decides (it sends SIGTERM)."""


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise KeyboardInterrupt


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)

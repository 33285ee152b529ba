"""Forked worker processes running steps for the local executor (``max_workers``), one step each at a time.

The walk stays in the process that forks them: a worker receives one step to run (its planned
unit's id, map position and launch count), runs it with the step runner as the walking process
would, and answers its status. Workers are forked when a step finds none idle, up to the pool's
size, and live as long as the run; they inherit the run (its plan and services), so a step
travels as a few fields. A worker that dies mid-step is reported by its exit status, and
replaced by the next launch that needs one.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional, Sequence

from magnus.runtime.handler import Ended, Handle
from magnus.runtime.signals import raise_interrupt

if TYPE_CHECKING:
    from magnus.runtime.units import ActiveRun, Unit

# How long workers get to record that they were interrupted before they are killed.
INTERRUPT_GRACE_SECONDS = 10.0
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}
_LENGTH = struct.Struct("!I")  # a message is its length, then its JSON


@dataclass(eq=False)
class _Worker:
    pid: int
    orders: int  # write end: steps to run
    answers: int  # read end: how they ended
    step: Optional[int] = None  # the handle of the step it runs


class WorkerPool:
    """At most ``size`` worker processes forked from this one; handles are numbers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.workers: List[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.numbers = iter(range(1, 1 << 62))

    def launch(self, unit: "Unit") -> Handle:
        idle = next((worker for worker in self.workers if worker.step is None), None) or self._fork(unit.run)
        idle.step = next(self.numbers)
        _write(idle.orders, {"unit": unit.planned.id, "map_variable": unit.map_variable, "retry": unit.retry})
        return idle.step

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """What the workers answered (waiting up to ``timeout`` for one); a worker that died, by its exit status."""
        ended: Dict[Handle, Ended] = {}
        for key, _ in self.selector.select(timeout):
            worker: _Worker = key.data
            answer, step = _read(worker.answers), worker.step
            worker.step = None
            if answer is not None:
                ended[step] = Ended(answer["status"], answer["message"])
                continue
            code = self._reap(worker)
            if step is not None:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                ended[step] = Ended(reason=f"its worker process {how}")
        return ended

    def cancel(self) -> None:
        """Interrupt the busy workers, give them a little time to record it, kill those still running."""
        busy = [worker for worker in self.workers if worker.step is not None]
        for worker in busy:
            _signal(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
        while any(worker.step is not None for worker in busy) and time.monotonic() < deadline:  # answers dropped:
            self.poll([], max(0.0, deadline - time.monotonic()))
        for worker in list(self.workers):
            if worker.step is not None:
                _signal(worker.pid, signal.SIGKILL)
                self._reap(worker)

    def close(self) -> None:
        """Tell every worker there is no more work; wait for them to leave."""
        for worker in list(self.workers):
            os.close(worker.orders)
            worker.orders = -1
            self._reap(worker)
        self.selector.close()

    def _fork(self, run: "ActiveRun") -> _Worker:
        orders_read, orders_write = os.pipe()
        answers_read, answers_write = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the worker writes out what this process had buffered, again
        # Held until the worker has its own handlers: an interrupt in between would unwind this
        # process's frames in the worker.
        signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
        if pid == 0:
            for worker in self.workers:  # or a worker would never see the end of its pipe
                for fd in (worker.orders, worker.answers):
                    if fd >= 0:
                        os.close(fd)
            os.close(orders_write)
            os.close(answers_read)
            _serve(orders_read, answers_write, run)
        os.close(orders_read)
        os.close(answers_write)
        worker = _Worker(pid, orders_write, answers_read)
        self.workers.append(worker)
        self.selector.register(answers_read, selectors.EVENT_READ, worker)
        return worker

    def _reap(self, worker: _Worker) -> int:
        """Collect a worker that ended (or is ending); its exit code."""
        _, status = os.waitpid(worker.pid, 0)
        self.workers.remove(worker)
        self.selector.unregister(worker.answers)
        for fd in (worker.orders, worker.answers):
            if fd >= 0:
                os.close(fd)
        return os.waitstatus_to_exitcode(status)


def _serve(orders: int, answers: int, run: "ActiveRun") -> NoReturn:
    """In a forked worker: run the steps handed out until there are no more, then leave the process.

    Never returns into the caller's frames (they belong to the walking process). Ctrl-C at a
    terminal reaches every process of the group: a worker leaves it to the walking process, which
    sends SIGTERM, so each worker is interrupted exactly once (its step records it).
    """
    from magnus.errors import MagnusError
    from magnus.runtime.step import StepRunner, new_step_log

    code = 1
    try:
        signal.signal(signal.SIGINT, _ignore)  # a handler, not SIG_IGN: programs a step starts keep Ctrl-C
        signal.signal(signal.SIGTERM, raise_interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # blocked by the parent around the fork
        runner = StepRunner(run.services)
        while (order := _read(orders)) is not None:
            node, map_variable, retry = run.plan.unit(order["unit"]).node, order["map_variable"], order["retry"]
            step_log = None  # a step launched again continues its log
            if not retry:  # a fresh step: as recorded by the walk, made again here
                step_log = new_step_log(node, node.step_log_name(map_variable), run.services)
                step_log.status = "PROCESSING"
            ran = runner.run(node, map_variable, step_log, retry=retry)  # type: ignore[arg-type]
            _write(answers, {"status": ran.status, "message": ran.message})
        code = 0
    except KeyboardInterrupt:
        code = 130
    except MagnusError as exc:  # the exit status fails the step
        print(f"Error: {exc}", file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a bug: shown, and the exit status fails the step
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _write(fd: int, message: Dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    data = _LENGTH.pack(len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def _read(fd: int) -> Optional[Dict[str, Any]]:
    """The next message on ``fd``, or None at its end (the writer left, maybe mid-message)."""
    header = _exactly(fd, _LENGTH.size)
    body = _exactly(fd, _LENGTH.unpack(header)[0]) if header is not None else None
    return None if body is None else dict(json.loads(body))


def _exactly(fd: int, size: int) -> Optional[bytes]:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _ignore(signum: int, frame: Any) -> None:
    """Ctrl-C in a worker: the walking process decides (it sends SIGTERM)."""


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)

"""Forked worker processes running steps for the local executor (``max_workers``), one step each at a time.

The walk stays in the forking process; a worker inherits the run (plan, services), receives a step as
four fields (unit id, map position, launch count, the variables a launch request's environment would
carry: the tracker's trace context), runs it and answers its status. Workers are forked
when none is idle, up to the pool's size; one that dies is reported by its exit status.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe, wait
from typing import TYPE_CHECKING, Dict, List, NoReturn, Optional, Sequence

from magnus.runtime.environment import launch_variables
from magnus.runtime.handler import Ended, Handle
from magnus.runtime.signals import raise_interrupt
from magnus.terminal import for_terminal

if TYPE_CHECKING:
    from magnus.runtime.units import ActiveRun, Unit

INTERRUPT_GRACE_SECONDS = 10.0  # for workers to record that they were interrupted, before they are killed
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


@dataclass(eq=False)
class _Worker:
    pid: int
    orders: Connection  # steps to run, to the worker
    answers: Connection  # how they ended, from the worker
    step: Optional[int] = None  # the handle of the step it runs


class WorkerPool:
    """At most ``size`` worker processes forked from this one; a step's handle is a number."""

    def __init__(self, size: int) -> None:
        self.size, self.numbers = size, itertools.count(1)
        self.workers: List[_Worker] = []

    def launch(self, unit: "Unit") -> Handle:
        worker = next((worker for worker in self.workers if worker.step is None), None) or self._fork(unit.run)
        worker.step = next(self.numbers)
        # what a launch request's environment would carry (the tracker's trace context), set for the step
        environment = unit.run.services.experiment_tracker.launch_environment(unit.name)
        worker.orders.send((unit.planned.id, unit.map_variable, unit.retry, environment))
        return worker.step

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """What the workers answered (waiting up to ``timeout`` for one); a dead worker, by its exit status."""
        busy = {worker.answers: worker for worker in self.workers if worker.step is not None}
        ended: Dict[Handle, Ended] = {}
        for answers in wait(list(busy), timeout):
            worker = busy[answers]  # type: ignore[index]
            step, worker.step = worker.step, None
            try:
                ended[step] = Ended(*worker.answers.recv())
            except EOFError:
                code = self._reap(worker)
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                ended[step] = Ended(reason=f"its worker process {how}")
        return ended

    def cancel(self) -> None:
        """Interrupt the busy workers, give them a little time to record it, kill those still running."""
        busy = [worker for worker in self.workers if worker.step is not None]
        for worker in busy:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
        while any(worker.step is not None for worker in busy) and time.monotonic() < deadline:
            self.poll([], deadline - time.monotonic())  # the steps record themselves: answers are not needed
        for worker in [worker for worker in busy if worker.step is not None]:  # still running: killed
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            self._reap(worker)

    def close(self) -> None:
        """Tell every worker there is no more work; wait for them to leave."""
        for worker in list(self.workers):
            worker.orders.close()
            self._reap(worker)

    def _fork(self, run: "ActiveRun") -> _Worker:
        (orders_read, orders_write), (answers_read, answers_write) = Pipe(duplex=False), Pipe(duplex=False)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the worker writes out what this process had buffered, again
        signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)  # until the worker has its own handlers
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
        if pid == 0:  # the others' ends closed, or a worker would never see the end of its pipe
            for end in [orders_write, answers_read, *(end for w in self.workers for end in (w.orders, w.answers))]:
                end.close()
            _serve(orders_read, answers_write, run)
        orders_read.close()
        answers_write.close()
        self.workers.append(_Worker(pid, orders_write, answers_read))
        return self.workers[-1]

    def _reap(self, worker: _Worker) -> int:
        """Collect a worker that ended (or is ending); its exit code."""
        self.workers.remove(worker)
        worker.orders.close()
        worker.answers.close()
        return os.waitstatus_to_exitcode(os.waitpid(worker.pid, 0)[1])


def _serve(orders: Connection, answers: Connection, run: "ActiveRun") -> NoReturn:
    """In a forked worker: run the steps handed out, then leave the process (never return into its frames).

    Ctrl-C at a terminal reaches the whole group: a worker leaves it to the walking process, which
    sends SIGTERM, so each worker is interrupted once (its step records it) and exits 130.
    """
    from magnus.errors import MagnusError
    from magnus.runtime.step import StepRunner

    code = 1
    try:
        signal.signal(signal.SIGINT, lambda *_: None)  # a handler, not SIG_IGN: programs a step starts keep Ctrl-C
        signal.signal(signal.SIGTERM, raise_interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # blocked by the parent around the fork
        runner = StepRunner(run.services)
        with contextlib.suppress(EOFError):  # the walking process closed the pipe: no more steps
            while True:
                unit_id, map_variable, retry, environment = orders.recv()
                # the step's log as the walk recorded it is read back (with the attempts of earlier launches)
                with launch_variables(environment):
                    ran = runner.run(run.plan.unit(unit_id).node, map_variable, retry=retry)  # type: ignore[arg-type]
                answers.send((ran.status, ran.message))
        code = 0
    except KeyboardInterrupt:
        code = 130
    except MagnusError as exc:  # the exit status fails the step
        print(for_terminal(f"Error: {exc}"), file=sys.stderr)
    except BaseException:  # noqa: BLE001 - a bug: shown, and the exit status fails the step
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

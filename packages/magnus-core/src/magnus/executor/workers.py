"""Forked worker processes walking the branches of composite steps, at any depth, for the local executor.

One pool serves a composite step and everything nested in it: at most ``limit`` workers, all
forked by the walking process, which alone schedules. A worker walks one branch at a time; when
that branch reaches a composite step of its own (a map inside a parallel, a parallel inside a map
iteration...), the worker hands the nested branches to the walking process, which queues them
for every worker, and then, instead of blocking, walks queued branches of that step (or of steps
nested deeper in it) itself until every nested branch has ended. So no worker waits on work
nobody can take (no deadlock, however deep the nesting and however few the workers), and never
more than ``limit`` processes run steps at once.

Workers are forked from the walking process, so they inherit the run (parsed pipeline, services);
a branch travels as its graph's name, its branch log name and its map values. A worker that dies
before its branch ended (killed, ``os._exit``) fails that branch only (and the branches it was
walking nested in it); the others run on to their end.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import selectors
import signal
import struct
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Counter, Deque, Dict, List, NoReturn, Optional, Sequence, Tuple

from magnus import defaults
from magnus.errors import MagnusError
from magnus.nodes.composite import BranchRun

if TYPE_CHECKING:
    from magnus.graph import Graph
    from magnus.runtime.services import RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)
# How long workers get to record that they were interrupted before they are killed.
INTERRUPT_GRACE_SECONDS = 10.0
# How often running workers are checked when none ended (a worker whose end went unnoticed).
_POLL_SECONDS = 1.0
# A worker's exit code when it was interrupted (its steps recorded that themselves).
_INTERRUPTED = 130
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}
# Messages travel as a 4-byte length, then JSON.
_LENGTH = struct.Struct("!I")
# The pool of this process when it is a worker: nested branches are handed to the walking process.
_channel: Optional["_Channel"] = None


def in_worker() -> bool:
    """Whether this process is a worker (whose nested branches go to the pool of the walking process)."""
    return _channel is not None


def run_nested(runs: Sequence[BranchRun]) -> None:
    """In a worker: have the pool run ``runs`` (a nested composite's branches); return when all ended.

    Meanwhile this worker walks queued branches of this step or nested in it.
    """
    assert _channel is not None, "only a worker hands nested branches to its pool"
    _channel.run_nested(runs)


# ---- the walking process's side ----------------------------------------------------------------------
@dataclass
class _Task:
    """A branch to walk, in the group of branches of one composite step."""

    run: Dict[str, Any]  # the branch as it travels (see _describe)
    groups: Tuple[int, ...]  # its group, then the groups holding the branch that fanned it out, and so on

    @property
    def group(self) -> int:
        return self.groups[0]


@dataclass
class _Frame:
    """A branch a worker walks, and the group of nested branches it waits for (when it does)."""

    task: int
    waits_for: Optional[int] = None


@dataclass
class _Worker:
    """A forked worker: its pid, the pipe it reads orders from, the pipe it answers on, what it walks."""

    pid: int
    orders: int  # write end; closed when there is no more work
    answers: int  # read end: end of file when the worker ended
    frames: List[_Frame] = field(default_factory=list)  # outermost first
    ready: bool = True  # waiting for an order (idle, or waiting for its nested branches)


class WorkerPool:
    """At most ``limit`` forked workers walking the branches of one composite step and all nested in it.

    The walking process owns every decision: which worker walks which branch, when a worker is
    started (a branch is queued and no worker can take it) and when it ends (no work is left).
    Worker ends are seen on their answer pipes (end of file), without threads and without reaping
    anyone else's children. A worker that dies in a branch (``sys.exit`` outside a step,
    ``os._exit``, a signal, the OOM killer) does not stop the others: the branches it was walking,
    and the steps they were running, are recorded FAIL, nested branches queued for them are
    recorded FAIL without running, a new worker takes over the branches left, and each composite
    settles from its branches' statuses as usual.

    On Ctrl-C every worker is asked to stop (SIGTERM, which a worker turns into
    ``KeyboardInterrupt``: its step is recorded ``interrupted``) and killed if it has not within
    :data:`INTERRUPT_GRACE_SECONDS`; then the interrupt goes on.
    """

    def __init__(self, services: "RunServices", run_branch: Callable[[BranchRun], str], limit: int) -> None:
        self.services = services
        self.run_branch = run_branch
        self.limit = limit
        self.workers: Dict[int, _Worker] = {}  # by answer pipe
        self.tasks: Dict[int, _Task] = {}
        self.left: Dict[int, int] = {}  # by group (the branches of one composite step): how many have not ended
        self.queue: Deque[int] = deque()
        self.queued: Counter[int] = collections.Counter()  # queued branches nested in each group, at any depth
        self.selector = selectors.DefaultSelector()
        self.graphs: Dict[str, "Graph"] = {}

    def run(self, runs: Sequence[BranchRun]) -> None:
        """Walk ``runs`` and every branch nested in them; return when all have ended."""
        for run in runs:  # what workers forked from here need to rebuild any branch they are handed
            self.graphs.update(_branch_graphs(run.graph))
        top = self._add_group([_describe(run) for run in runs], within=None)
        try:
            self._assign()
            while self.workers:
                ready = [key.fd for key, _ in self.selector.select(_POLL_SECONDS)]
                for fd in ready:
                    self._answer(fd)
                if not ready:  # a worker may have ended while a process it forked holds its pipe
                    for fd in list(self.workers):
                        self._reap(fd, block=False)
                    self._assign()
        except BaseException:  # Ctrl-C (or a failure here): stop the workers, then let it go on
            self._stop()
            raise
        finally:
            self.selector.close()
        assert self.left[top] == 0, "the pool ended with branches not walked"

    # ---- scheduling ----------------------------------------------------------------------------
    def _add_group(self, runs: List[Dict[str, Any]], within: Optional[int]) -> int:
        """Queue the branches of a composite step, fanned out by the branch ``within`` (None: here)."""
        number = len(self.left)
        self.left[number] = len(runs)
        groups = (number, *(self.tasks[within].groups if within is not None else ()))
        numbers = []
        for run in runs:
            numbers.append(len(self.tasks))
            self.tasks[len(self.tasks)] = _Task(run, groups)
        self.queue.extendleft(reversed(numbers))  # nested work first: the steps waiting for it settle sooner
        self.queued.update({group: len(runs) for group in groups})
        return number

    def _dequeue(self, number: int) -> None:
        self.queue.remove(number)
        self.queued.subtract(self.tasks[number].groups)

    def _assign(self) -> None:
        """Give every ready worker what it can do; start workers for branches nobody can take."""
        for fd in list(self.workers):
            if fd in self.workers and self.workers[fd].ready:
                self._order(fd)
        while self.queue and len(self.workers) < self.limit:
            self._order(self._start())

    def _order(self, fd: int) -> None:
        """Tell the ready worker of ``fd`` what to do next, if anything: resume, walk a branch, or end."""
        worker = self.workers[fd]
        waits_for = worker.frames[-1].waits_for if worker.frames else None
        if waits_for is not None and self.left[waits_for] == 0:
            worker.frames[-1].waits_for = None
            self._send(fd, {"resume": True})
            return
        number = self._next_task(waits_for)
        if number is not None:
            if self._send(fd, {"walk": number, "run": self.tasks[number].run}):
                worker.frames.append(_Frame(number))
            else:
                self.queue.appendleft(number)
                self.queued.update(self.tasks[number].groups)
        elif not worker.frames and not self.queue and self._all_ended():
            self._close_orders(fd)

    def _next_task(self, waits_for: Optional[int]) -> Optional[int]:
        """The first queued branch a worker may take: any when idle, else one nested in what it waits for.

        A waiting worker takes only branches it waits for (directly or deeper), so what it waits
        for is never stuck behind an unrelated branch it took.
        """
        if waits_for is not None and not self.queued[waits_for]:
            return None
        for number in self.queue:
            if waits_for is None or self._nested_in(number, waits_for):
                self._dequeue(number)
                return number
        return None

    def _nested_in(self, number: int, group: int) -> bool:
        return group in self.tasks[number].groups

    def _all_ended(self) -> bool:
        return not any(self.left.values())

    def _send(self, fd: int, message: Dict[str, Any]) -> bool:
        """Whether the worker got ``message`` (not when it just ended: its end of file comes next)."""
        worker = self.workers[fd]
        try:
            _write_message(worker.orders, message)
        except BrokenPipeError:
            return False
        worker.ready = False
        return True

    def _close_orders(self, fd: int) -> None:
        worker = self.workers[fd]
        if worker.orders >= 0:
            os.close(worker.orders)
            worker.orders = -1

    # ---- answers -------------------------------------------------------------------------------
    def _answer(self, fd: int) -> None:
        """A worker walked its branch, or fanned out a nested step, or ended."""
        message = _read_message(fd)
        if message is None:
            self._reap(fd, block=True)
        elif "fan" in message:
            worker = self.workers[fd]
            worker.frames[-1].waits_for = self._add_group(message["fan"], within=worker.frames[-1].task)
            worker.ready = True
        else:
            worker = self.workers[fd]
            frame = worker.frames.pop()
            worker.ready = True
            self._report(frame.task, message["status"])
            self._ended(frame.task)
        self._assign()

    def _report(self, number: int, status: str) -> None:
        """A branch of the step this process fanned out ended: the run's observer counts it here."""
        if len(self.tasks[number].groups) == 1:  # not nested in a branch a worker walks
            self.services.events.branch_ended(self._branch(number), status)

    def _ended(self, number: int) -> None:
        self.left[self.tasks[number].group] -= 1

    def _start(self) -> int:
        orders_read, orders_write = os.pipe()
        answers_read, answers_write = os.pipe()
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
                if worker.orders >= 0:
                    os.close(worker.orders)
                os.close(worker.answers)
            os.close(orders_write)
            os.close(answers_read)
            _serve(_Channel(orders_read, answers_write, self.run_branch, self.graphs))
        os.close(orders_read)
        os.close(answers_write)
        self.workers[answers_read] = _Worker(pid, orders_write, answers_read)
        self.selector.register(answers_read, selectors.EVENT_READ)
        return answers_read

    def _reap(self, fd: int, block: bool) -> None:
        """Collect the worker of ``fd`` if it ended; the branches it was walking fail."""
        worker = self.workers[fd]
        done, status = os.waitpid(worker.pid, 0 if block else os.WNOHANG)
        if not done:
            return
        del self.workers[fd]
        self.selector.unregister(fd)
        os.close(fd)
        if worker.orders >= 0:
            os.close(worker.orders)
        code = os.waitstatus_to_exitcode(status)
        for frame in reversed(worker.frames):  # innermost first, as their steps would have settled
            if frame.waits_for is not None:
                self._drop(frame.waits_for)
            self._lost(self._branch(frame.task), code)
            self._report(frame.task, defaults.FAIL)
            self._ended(frame.task)

    def _drop(self, group: int) -> None:
        """The worker waiting for ``group`` died: its queued branches never run, and fail."""
        for number in [number for number in self.queue if self._nested_in(number, group)]:
            self._dequeue(number)
            self._lost(self._branch(number), None)
            self._ended(number)

    def _branch(self, number: int) -> str:
        return str(self.tasks[number].run["name"])

    def _lost(self, name: str, code: Optional[int]) -> None:
        """A branch that will not end by itself (None: it never started): it fails, and its running step."""
        if code is None:
            how = "was not walked: the worker walking the step holding it ended"
        else:
            how = f"its worker process {f'was killed by signal {-code}' if code < 0 else f'exited with code {code}'}"
        if code != _INTERRUPTED:
            logger.error("branch %s: %s before the branch ended; it is recorded FAIL", name, how)
        store, run_id = self.services.run_log_store, self.services.run_id
        try:
            for step in store.get_branch_log(run_id, name).steps.values():
                if step.status == defaults.PROCESSING:  # the step the worker was running
                    store.update_step_log_status(run_id, step.internal_name, defaults.FAIL, how)
            store.update_branch_log_status(run_id, name, defaults.FAIL)
        except MagnusError as exc:
            logger.error("branch %s: could not be recorded FAIL: %s", name, exc)

    def _stop(self) -> None:
        """Interrupt every worker, wait a little, kill those still running; record their branches."""
        self.queue.clear()
        self.queued.clear()
        for worker in self.workers.values():
            _signal(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
        try:
            while self.workers and time.monotonic() < deadline:
                for key, _ in self.selector.select(max(0.0, deadline - time.monotonic())):
                    message = _read_message(key.fd)
                    if message is None:
                        self._reap(key.fd, block=True)
                    elif "fan" not in message:
                        self._report(self.workers[key.fd].frames.pop().task, message["status"])
        finally:
            for fd, worker in list(self.workers.items()):
                _signal(worker.pid, signal.SIGKILL)
                self._reap(fd, block=True)


def _branch_graphs(graph: "Graph") -> Dict[str, "Graph"]:
    """``graph`` and every graph nested in it, by branch name (map parts as the placeholder)."""
    found = {graph.internal_branch_name: graph}
    for node in graph.walk():
        for branch in node.get_branches():
            found[branch.internal_branch_name] = branch
    return found


def _describe(run: BranchRun) -> Dict[str, Any]:
    """A branch as it travels between processes."""
    return {"graph": run.graph.internal_branch_name, "name": run.name, "map_variable": run.map_variable}


# ---- the worker's side ---------------------------------------------------------------------------------
class _Channel:
    """A worker's two pipes to the walking process, and what it needs to walk any branch it is handed."""

    def __init__(
        self, orders: int, answers: int, run_branch: Callable[[BranchRun], str], graphs: Dict[str, "Graph"]
    ) -> None:
        self.orders = orders
        self.answers = answers
        self.run_branch = run_branch
        self.graphs = graphs

    def serve(self) -> None:
        """Walk the branches handed out until told there is no more work."""
        while True:
            message = _read_message(self.orders)
            if message is None:
                return
            self._walk(message)

    def run_nested(self, runs: Sequence[BranchRun]) -> None:
        """Hand ``runs`` to the pool; walk what it hands back until told they all ended."""
        for graph in (run.graph for run in runs):
            self.graphs.setdefault(graph.internal_branch_name, graph)
        _write_message(self.answers, {"fan": [_describe(run) for run in runs]})
        while True:
            message = _read_message(self.orders)
            if message is None:  # the walking process is gone: nothing more can be done here
                raise MagnusError("the process walking the run ended while branches were running")
            if "resume" in message:
                return
            self._walk(message)

    def _walk(self, message: Dict[str, Any]) -> None:
        described = message["run"]
        run = BranchRun(described["name"], self.graphs[described["graph"]], described["map_variable"])
        status = self.run_branch(run)
        _write_message(self.answers, {"walked": message["walk"], "status": status})


def _serve(channel: _Channel) -> NoReturn:
    """In a forked worker: walk the branches handed out until there are no more, then leave the process.

    Never returns into the caller's frames (they belong to the walking process). Ctrl-C at a
    terminal reaches every process of the group: a worker ignores it and waits for the SIGTERM
    the walking process sends, so each worker is interrupted exactly once, and prints no
    traceback for it (nor for a magnus error, shown as one line).
    """
    global _channel
    _channel = channel
    code = 1
    try:
        signal.signal(signal.SIGINT, _ignore)  # a handler, not SIG_IGN: programs a step starts keep Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)  # blocked by the parent around the fork
        channel.serve()
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


# ---- messages ------------------------------------------------------------------------------------------
def _write_message(fd: int, message: Dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    data = _LENGTH.pack(len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def _read_message(fd: int) -> Optional[Dict[str, Any]]:
    """The next message on ``fd``, or None at its end."""
    header = _read_exactly(fd, _LENGTH.size)
    if not header:
        return None
    size = _LENGTH.unpack(header)[0]
    body = _read_exactly(fd, size)
    if len(body) < size:  # the writer ended mid-message
        return None
    loaded: Dict[str, Any] = json.loads(body)
    return loaded


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

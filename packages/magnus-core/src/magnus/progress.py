"""Progress of a run on stderr, as ``magnus execute`` shows it: a line per step, counts, a summary.

:class:`ProgressRenderer` is a :class:`~magnus.runtime.events.RunObserver`: the walk tells it
what happens and it prints, on its stream (stderr), a line when a step starts and when it ends
(status and duration), the counts of a map or parallel step's branches as they end (a line
every :attr:`ProgressRenderer.interval` seconds at first, less often as the step runs on, so a
map of 10,000 items prints a few dozen lines, not 10,000), and, when the command line asks at
the very end, a summary: the run id, its status and duration, where its run log is, and for a
failed run the command that resumes it. A step that passed without running its command (a
mocked run, ``executor: {type: mocked}``) says ``(mocked)`` after its status, and so does the
summary of a run in which steps were mocked: a dry run never reads as a real one.

Steps inside map items are counted, not printed one by one. Colour is used only when the stream
is a terminal and ``NO_COLOR`` is not set. What users wrote (run ids, step names, a map's values,
messages) is shown through :func:`~magnus.terminal.for_terminal`: it cannot drive the terminal or
forge a line.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Union

from magnus import defaults
from magnus.runtime.cache import REUSED
from magnus.runtime.events import RunObserver, RunStarted, StepEnded
from magnus.runtime.step import INTERRUPTED
from magnus.terminal import for_terminal as shown
from magnus.timing import format_seconds

# A failure's message that is an exception's last traceback line (``ValueError: ...``): the task's
# traceback was printed as it failed, so the step's line does not say it a second time.
_EXCEPTION_LINE = re.compile(r"[A-Z][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*: ")
_COLOURS = {defaults.SUCCESS: "32", defaults.FAIL: "31", "note": "33", "dim": "2", "bold": "1"}


def wants_colour(stream: TextIO) -> bool:
    """Colour on a terminal only, never with ``NO_COLOR`` set (https://no-color.org) or ``TERM=dumb``."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class _Fan:
    """A composite step this process fanned out: its branches, counted as they end."""

    name: str
    kind: str  # "items" (a map), "iterations" (a loop) or "branches"
    total: int
    shown: bool  # printed (not inside a map item)
    ended: int = 0
    failed: int = 0
    started_at: float = field(default_factory=time.monotonic)
    printed_at: float = field(default_factory=time.monotonic)

    def counts(self) -> str:
        text = f"{self.ended:,}/{self.total:,} {self.kind}"
        return f"{text}, {self.failed:,} failed" if self.failed else text


@dataclass
class _Outcome:
    run_id: str
    status: str
    seconds: float


class ProgressRenderer(RunObserver):
    """Prints a run's progress on ``stream``; :meth:`summary` prints how it ended.

    ``resume`` is the command line that reruns this pipeline the way it was started (without
    ``--run-id`` and ``--use-cached``); the summary of a failed run appends ``--use-cached RUN_ID``.
    """

    # Lines of branch counts of a composite step: the first after ``interval`` seconds, then
    # spaced by a fifth of the time the step has run, at most ``longest_interval`` apart.
    interval: float = 2.0
    longest_interval: float = 30.0

    def __init__(
        self,
        stream: Optional[TextIO] = None,
        resume: Union[Sequence[str], Callable[[str], str]] = (),
        colour: Optional[bool] = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.colour = wants_colour(self.stream) if colour is None else colour
        # the command line resuming a run, or (the SDK) what says how, given the run id
        self.resume: Union[List[str], Callable[[str], str]] = resume if callable(resume) else list(resume)
        self._fans: Dict[str, _Fan] = {}  # composite steps fanned out and not ended, by name
        self._location = ""
        self._kept = True
        self._interrupted = False
        self._outcome: Optional[_Outcome] = None
        self._mocked = 0  # steps passed without running their command
        self._ran = 0  # tasks that ran their command (in a mocked run, the patched ones)

    # ---- output -------------------------------------------------------------------------------
    def _paint(self, text: str, style: str) -> str:
        code = _COLOURS.get(style)
        return f"\033[{code}m{text}\033[0m" if self.colour and code else text

    def _print(self, line: str) -> None:
        # One write per line: lines of worker processes sharing the stream do not interleave.
        self.stream.write(line + "\n")
        self.stream.flush()

    def _indent(self, name: str) -> str:
        """Two spaces, and two more for each shown composite step holding step ``name``."""
        return "  " * (1 + sum(1 for fan in self._fans.values() if fan.shown and name.startswith(fan.name + ".")))

    # ---- events -------------------------------------------------------------------------------
    def run_started(self, started: RunStarted) -> None:
        self._location, self._kept = started.location, started.kept
        resuming = f" (resuming run {shown(started.resumes)})" if started.resumes else ""
        self._print(f"run {self._paint(shown(started.run_id), 'bold')} started{resuming}")
        if not self._kept:
            self._print(
                self._paint("note: the run log is kept in memory only and is lost when the run ends", "note")
                + "; to keep it (and resume with --use-cached) pass -c with a config holding "
                "'run_log_store: {type: file-system}'"
            )

    def step_started(self, name: str, step_type: str, map_variable: defaults.TypeMapVariable) -> None:
        if map_variable is not None:
            return
        self._print(f"{self._indent(name)}{shown(name)} {self._paint('started', 'dim')}")

    def step_ended(self, ended: StepEnded) -> None:
        name, status, message = ended.name, ended.status, ended.message
        if message == INTERRUPTED:
            self._interrupted = True
        fan = self._fans.pop(name, None)  # a composite step: what its branches counted
        if ended.mocked:
            self._mocked += 1
        elif ended.ran_command:
            self._ran += 1
        if ended.map_variable is not None:
            return
        indent = self._indent(name)
        if ended.reused:
            self._print(f"{indent}{shown(name)} {self._paint('reused', 'dim')} (succeeded in the run resumed)")
            return
        if status == defaults.SUCCESS and message.startswith(REUSED):  # restored from the cache
            self._print(f"{indent}{shown(name)} {self._paint('reused', 'dim')} {shown(message[len(REUSED) :])}")
            return
        mocked = f" {self._paint('(mocked)', 'note')}" if ended.mocked else ""
        line = f"{indent}{shown(name)} {self._paint(status, status)}{mocked} in {format_seconds(ended.seconds)}"
        if fan is not None:
            line += f" ({fan.counts()})"
        if message and status != defaults.SUCCESS and (fan is None or message == INTERRUPTED):
            if not _EXCEPTION_LINE.match(message):  # else its traceback, printed above, ends with it
                line += f": {shown(message)}"
        elif message and status == defaults.SUCCESS and fan is not None:  # what a conditional or loop decided
            line += f": {shown(message)}"
        self._print(line)

    def branches_started(
        self,
        name: str,
        total: int,
        map_variable: defaults.TypeMapVariable,
        dynamic: bool = False,
        iterates: bool = False,
    ) -> None:
        if name in self._fans:  # a loop's next iteration
            self._fans[name].total = total
            return
        noun = "iterations" if iterates else "items" if dynamic else "branches"
        self._fans[name] = _Fan(name, noun, total, shown=map_variable is None)

    def branch_ended(self, step: str, branch: str, status: str) -> None:
        fan = self._fans.get(step)
        if fan is None:
            return
        fan.ended += 1
        if status != defaults.SUCCESS:
            fan.failed += 1
        if fan.shown and fan.kind == "iterations":  # a loop's iterations are few: each is told
            self._print(f"{self._indent(branch)}{shown(branch)} {self._paint(status, status)}")
            return
        if fan.shown and fan.ended < fan.total:
            moment = time.monotonic()
            wait = min(self.longest_interval, max(self.interval, (moment - fan.started_at) / 5))
            if moment - fan.printed_at >= wait:
                fan.printed_at = moment
                self._print(f"{self._indent(fan.name)}{shown(fan.name)}: {fan.counts()}")

    def composite_ended(self, name: str, total: int, failed: int) -> None:
        fan = self._fans.get(name)
        if fan is not None:
            fan.ended, fan.total, fan.failed = total, total, failed  # the store's word is final; printed at its end

    def run_ended(self, run_id: str, status: str, seconds: float) -> None:
        self._outcome = _Outcome(run_id, status, seconds)

    def handed_off(self, note: str) -> None:
        self._print(note)

    # ---- the end ------------------------------------------------------------------------------
    def _mocked_run(self) -> str:
        """`` (mocked run: no command ran)`` for a run whose steps were mocked ('' for a real run)."""
        if not self._mocked:
            return ""
        what = "no command ran" if not self._ran else "only patched steps ran"
        return " " + self._paint(f"(mocked run: {what})", "note")

    def summary(self) -> None:
        """Print how the run ended (nothing when it never started): id, status, time, run log, resume."""
        outcome = self._outcome
        if outcome is None:
            return
        if outcome.status == defaults.TRIGGERED:
            self._print(f"run {shown(outcome.run_id)} handed off ({defaults.TRIGGERED}): its steps run elsewhere")
            return
        how = f"{outcome.status} (interrupted)" if self._interrupted else outcome.status
        self._print(
            f"run {self._paint(shown(outcome.run_id), 'bold')} {self._paint(how, outcome.status)}{self._mocked_run()} "
            f"in {format_seconds(outcome.seconds)}, run log: {shown(self._location)}"
        )
        if outcome.status == defaults.SUCCESS or not self.resume:
            return
        if not self._kept:
            self._print("to resume a failed run, keep its run log: pass -c with 'run_log_store: {type: file-system}'")
            return
        resume = self.resume
        command = resume(outcome.run_id) if callable(resume) else shlex.join([*resume, "--use-cached", outcome.run_id])
        self._print(f"resume with: {self._paint(shown(command), 'bold')}")


def failure_line(run_log: Any) -> str:
    """``Error: run R ended FAIL at step S: why`` for a run that failed ('' for one that did not, or
    was handed to an engine): what ``magnus execute`` and the SDK print last.

    The step named is the deepest that failed (in a composite, its first branch that failed, down
    to the step inside it: a map item's), with its own message; how many more steps failed with the
    same message is said, not repeated.
    """
    if run_log is None or run_log.status == defaults.SUCCESS:
        return ""
    failed = [step for step in run_log.steps.values() if step.status == defaults.FAIL]
    if not failed:
        return shown(f"Error: run '{run_log.run_id}' ended {run_log.status}")
    deepest = _deepest_failure(failed[-1])
    alike = sum(1 for leaf in _failed_leaves(failed[-1]) if leaf.message == deepest.message) - 1
    more = f" (and {alike} more step{'s' if alike > 1 else ''} failed the same way)" if alike > 0 else ""
    where = f" at step '{deepest.internal_name}': {deepest.message}{more}"
    return shown(f"Error: run '{run_log.run_id}' ended {run_log.status}{where}")


def _deepest_failure(step: Any) -> Any:
    """The step that failed first inside ``step``'s first failed branch, recursively; ``step`` itself
    when no branch of it failed (a task, or a composite that failed before its branches ran)."""
    for branch in step.branches.values():
        if branch.status == defaults.FAIL:
            inner = [child for child in branch.steps.values() if child.status == defaults.FAIL]
            if inner:
                return _deepest_failure(inner[0])
    return step


def _failed_leaves(step: Any) -> List[Any]:
    """Every failed step inside ``step`` that holds no failed branch (``step`` when it has none)."""
    leaves = [
        leaf
        for branch in step.branches.values()
        if branch.status == defaults.FAIL
        for child in branch.steps.values()
        if child.status == defaults.FAIL
        for leaf in _failed_leaves(child)
    ]
    return leaves or [step]

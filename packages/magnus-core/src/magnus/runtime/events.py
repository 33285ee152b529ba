"""What a walk tells whoever watches it: steps started and ended, branches ended, the run ended.

The orchestrator calls a :class:`RunObserver` (``RunServices.events``) as it walks; the command
line subscribes a renderer that prints progress (``magnus.progress``), and any other observer
(a test, a notebook widget) subclasses :class:`RunObserver` and overrides what it needs. The base
class does nothing, so a run nobody watches pays one method call per event.

What is promised:

- Events come from the process that walks the run, wherever its steps run (in this process, in
  worker processes, containers, SLURM jobs): a step run elsewhere is reported when the walk learns
  how it ended; a pipeline handed to an engine (Argo) reports where it went (``handed_off``) and
  ``run_ended`` with ``TRIGGERED``.
- With steps running side by side (workers, jobs), the events of different branches interleave;
  each names the step (and, for a branch, the composite) it is about.
- Observers must be quick and must not raise: they run between the steps of the walk.
"""

from __future__ import annotations

from typing import NamedTuple

from magnus import defaults


class RunStarted(NamedTuple):
    """A run whose log now exists: its id, the run it resumes (''), where a person finds its log, and
    whether that log outlives the run's process (not: kept in memory only)."""

    run_id: str
    resumes: str
    location: str
    kept: bool


class StepEnded(NamedTuple):
    """A non-terminal step that ended: its status, how long it took as the walk saw it, why it failed.

    ``reused``: ``--use-cached`` skipped it (it succeeded in the run resumed). ``mocked``: it passed
    without running its command (``executor: {type: mocked}``). ``ran_command``: it ran a command
    of the user's (a task, not a stub, a composite or a mock).
    """

    name: str
    step_type: str
    map_variable: defaults.TypeMapVariable
    status: str
    seconds: float
    message: str = ""
    reused: bool = False
    mocked: bool = False
    ran_command: bool = False


class RunObserver:
    """Watches one walk; every method does nothing unless overridden.

    ``name`` is a step's internal name (``fan.3.work`` inside a map), ``map_variable`` the map
    position it runs at (None outside maps), ``seconds`` wall time measured by the walk.
    """

    def run_started(self, started: RunStarted) -> None:
        """The run log exists; nothing has run yet."""

    def step_started(self, name: str, step_type: str, map_variable: defaults.TypeMapVariable) -> None:
        """A non-terminal step starts (a task, or a composite about to fan out)."""

    def step_ended(self, ended: StepEnded) -> None:
        """A non-terminal step ended."""

    def branches_started(
        self,
        name: str,
        total: int,
        map_variable: defaults.TypeMapVariable,
        dynamic: bool = False,
        iterates: bool = False,
    ) -> None:
        """Composite step ``name`` fanned out to ``total`` branches; ``dynamic``: its node's
        ``dynamic_branches`` (map items rather than the fixed branches of a parallel); ``iterates``:
        its node's (a loop's iterations, told again with each new one, ``total`` counting it)."""

    def branch_ended(self, step: str, branch: str, status: str) -> None:
        """Branch ``branch`` of the composite step ``step`` ended with ``status``."""

    def composite_ended(self, name: str, total: int, failed: int) -> None:
        """Composite step ``name`` settled from its ``total`` branches, ``failed`` of them not SUCCESS."""

    def run_ended(self, run_id: str, status: str, seconds: float) -> None:
        """The run's final status was written (SUCCESS or FAIL; FAIL also when interrupted)."""

    def handed_off(self, note: str) -> None:
        """The run went to an engine; ``note`` tells the person where (a manifest written to a file,
        a workflow submitted to a server). Comes once per place, before ``run_ended``."""


# The observer of a run nobody watches.
NO_OBSERVER = RunObserver()

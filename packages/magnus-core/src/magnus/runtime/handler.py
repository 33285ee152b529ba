"""What the orchestrator asks of an engine that runs a run's units one at a time: the step handler.

dagster's step-delegating executor is the model. The orchestrator decides *what* runs and *when*
(a loop over ready units, :mod:`magnus.runtime.orchestrator`); a step handler decides *where*:

- ``launch(unit)`` starts one unit (a step; with ``launch_branches``, a group of branches) and
  returns a handle to poll, or, when it ran the unit to its end in the call (in this process),
  how it ended (an :class:`Ended`);
- ``poll(handles, timeout)`` reports, in one call for every handle in flight (one scheduler query
  on SLURM, one ``ray.wait``), those that ended, waiting up to ``timeout`` seconds for one;
- ``cancel(handles)`` stops them (Ctrl-C, SIGTERM); it returns once they stopped or were told to,
  with how each ended where the engine can say.

Waiting, routing, retries after a death, recording a unit that ended without recording itself,
interrupts and SIGTERM are the orchestrator's, once for every engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Hashable, List, Mapping, NamedTuple, Optional, Protocol, Sequence, Union

if TYPE_CHECKING:
    from magnus.runtime.units import Unit


class Ended(NamedTuple):
    """How a launched unit ended, as its engine saw it.

    ``status`` and ``message`` are what the unit recorded, when the engine knows them ('': read
    them from the run log). A unit still ``PROCESSING`` in the run log died without recording its
    end: ``reason`` says how, as the engine saw it (``its container exited with code 137``,
    ``SLURM job 12 ran past its time limit: TIMEOUT``), ``detail`` what may explain it (the last
    lines of its output). ``retry``: such a death may be relaunched (False: cancelled on purpose).
    ``note`` is added to the message of a step that recorded a failure (where its output is).
    ``mocked``: the step passed without running its command (a mocked run).
    """

    status: str = ""
    message: str = ""
    reason: str = ""
    detail: str = ""
    retry: bool = True
    note: str = ""
    mocked: bool = False


Handle = Hashable


class StepHandler(Protocol):
    """An engine running units one at a time (see the module)."""

    def capacity(self) -> int:
        """How many units may be in flight at once; 0 for as many as are ready."""

    def launches_branches(self, composite: "Unit", count: int) -> bool:
        """Whether this engine walks the ``count`` branches of the fan-out ``composite`` itself, each as
        a whole, rather than having the orchestrator launch their steps.

        With no capacity (0) they are started at once, by :meth:`launch_branches` (one job array);
        with a capacity, one by one as there is room, each by :meth:`launch` (a unit of kind branch).
        """

    def launch_branches(self, units: Sequence["Unit"]) -> List[Handle]:
        """Start the branches of one composite (when :meth:`launches_branches`); a handle each."""

    def launch(self, unit: "Unit") -> Union[Handle, Ended]:
        """Start one unit: a handle to poll, or how it ended when it ran to its end in this call."""

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """The handles that ended (waiting up to ``timeout`` seconds for one), one query for all."""

    def cancel(self, handles: Sequence[Handle]) -> Optional[Mapping[Handle, Ended]]:
        """Stop every unit of ``handles``; return once they stopped (or were told to), with the engine's
        account of how each ended where it has one (``SLURM job 12 was cancelled``)."""

"""How magnus writes its own command lines: the words every launch command shares.

A step or branch name travels with ``%`` for each space (magnus 0.5.1's rule), encoded and
decoded only here; an option is written only when it has a value; every command of a run ends
with the run's files and tag. `magnus.runtime.request` builds the launch requests' command lines
from these; ``magnus execute`` of a whole run (a walk handed to another process, the line that
resumes a failed run) is written here, so printing a resume hint needs no request class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Sequence, Tuple

from magnus import defaults

if TYPE_CHECKING:
    from magnus.runtime.services import RunOptions


def encode_name(name: str) -> str:
    """A step or branch name as a command line carries it: each space as ``%``."""
    return name.replace(" ", defaults.COMMAND_FRIENDLY_CHARACTER)


def decode_name(name: str) -> str:
    """The name a command line carried (``%`` for each space, as magnus 0.5.1 wrote them)."""
    return name.replace(defaults.COMMAND_FRIENDLY_CHARACTER, " ")


def flags(*options: Tuple[str, str]) -> List[str]:
    """``flag value`` for each option that has a value, in the order given."""
    return [part for flag, value in options if value for part in (flag, value)]


def run_flags(run: "RunOptions") -> List[str]:
    """The options every command of a run ends with: its configuration, parameters and tag (and
    ``--cache`` when the run reuses cached steps)."""
    argv = flags(("-c", run.configuration_file), ("-p", run.parameters_file), ("--tag", run.tag))
    return argv + (["--cache"] if run.cache else [])


def execute_argv(run: "RunOptions", program: Sequence[str] = ("magnus",), resume: bool = False) -> List[str]:
    """``magnus execute`` of the whole run ``run`` (a walk handed to another process: a detached SLURM job).

    With ``resume`` the line that resumes it instead: no run id (a resumed run gets a new one),
    ``--use-cached`` left for the caller to add.
    """
    argv = [*program, "execute", "-f", run.pipeline_file]
    if not resume:
        argv += flags(("--run-id", run.run_id))
    argv += run_flags(run)
    return argv + ([] if resume else flags(("--use-cached", run.use_cached)))

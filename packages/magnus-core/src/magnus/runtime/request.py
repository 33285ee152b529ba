"""The launch protocol: how the process walking a pipeline asks another process to run one step.

A container, a pod or a SLURM job runs a step (or fans a composite step out or in) from the
command line a :class:`StepRequest` renders, and ``magnus`` reads it back into the same value.
This is the only place that command line is written: executors hand :meth:`StepRequest.to_argv`
to their engine, never assemble it themselves::

    magnus execute_single_node RUN_ID PIPELINE STEP [--map-variable JSON] [--retry N] [--use-cached OLD_RUN_ID]
        -c CONFIG [-p PARAMS] [--tag TAG]
    magnus fan RUN_ID STEP -f PIPELINE -m out|in [--map-variable JSON] [--iterations-file PATH] [--use-cached OLD]
        -c CONFIG ...
    magnus execute_branch RUN_ID PIPELINE STEP BRANCH [--map-variable JSON] [--use-cached OLD_RUN_ID] -c CONFIG ...

The last walks one branch of a composite step (all its steps, in turn) in the process it starts,
for engines that run a whole branch in one place (a SLURM array task per map item).
:func:`run_argv` writes the ``magnus execute`` line of a whole run handed to another process.

Values may be placeholders an engine fills in (``{{workflow.parameters.run_id}}``, ``{{retries}}``):
the run id, the map variable and the retry number are carried as text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Sequence, Tuple

from magnus import defaults
from magnus.errors import UserInputError

if TYPE_CHECKING:
    import argparse

    from magnus.nodes.base import BaseNode
    from magnus.nodes.composite import BranchRun
    from magnus.runtime.services import RunOptions

EXECUTE = "execute_single_node"
FAN = "fan"
BRANCH = "execute_branch"
FAN_MODES = ("out", "in")


@dataclass(frozen=True)
class StepRequest:
    """One step of a run to execute elsewhere, or one composite step to fan out (``out``) or in (``in``).

    ``step`` is the node's internal name (map parts as the placeholder); ``map_variable`` the
    JSON of the map position ('' outside maps). A fan-out with ``iterations_file`` also writes
    there the JSON list of its branches' map variables (each a JSON text), which engines that
    fan out themselves (Argo's ``withParam``, a SLURM job array) iterate over.

    With ``branch`` (the internal name of one of the composite ``step``'s branches, map parts as
    the placeholder) the request walks that branch at ``map_variable``, the map position its steps
    see (for a map's branch, the item).

    ``use_cached`` is the run being resumed: a step that succeeded there is recorded as reused
    instead of run (by the walk of a branch, or by the request of that one step, for engines
    that walk the graph themselves). ``retry`` is the engine's count of earlier launches of this
    step (Argo's ``{{retries}}``; '' or 0 for the first): the attempts of this launch are
    numbered after them, so a step an engine retried shows attempts 1, 2, 3 in its log.
    """

    run_id: str
    pipeline_file: str
    step: str
    configuration_file: str
    map_variable: str = ""
    parameters_file: str = ""
    tag: str = ""
    fan: str = ""
    iterations_file: str = ""
    branch: str = ""
    use_cached: str = ""
    retry: str = ""

    def __post_init__(self) -> None:
        if self.fan and self.fan not in FAN_MODES:
            raise UserInputError(f"--mode must be 'in' or 'out', got '{self.fan}'")
        if self.iterations_file and self.fan != "out":
            raise UserInputError("--iterations-file is written by a fan-out only (-m out)")
        if self.branch and self.fan:
            raise UserInputError("a request walks a branch or fans a step, not both")
        if self.retry and (self.fan or self.branch):
            raise UserInputError("--retry numbers the launches of one step (execute_single_node) only")

    def retry_number(self) -> int:
        """The engine's count of earlier launches of this step (0 for the first).

        Raises:
            UserInputError: ``--retry`` is not a whole number from 0 up.
        """
        if not self.retry:
            return 0
        if not re.fullmatch(r"[0-9]{1,9}", self.retry):
            raise UserInputError(f"--retry: expected a whole number from 0 up, got '{self.retry}'")
        return int(self.retry)

    @classmethod
    def for_branch(
        cls,
        run: "BranchRun",
        *,
        run_id: str,
        pipeline_file: str,
        configuration_file: str,
        parameters_file: str = "",
        tag: str = "",
        use_cached: str = "",
    ) -> "StepRequest":
        """The request walking one branch run of a composite step (as the orchestrator fanned it out)."""
        branch = run.graph.internal_branch_name
        return cls(
            run_id=run_id,
            pipeline_file=pipeline_file,
            step=branch.rsplit(".", 1)[0],
            configuration_file=configuration_file,
            map_variable=json.dumps(run.map_variable) if run.map_variable else "",
            parameters_file=parameters_file,
            tag=tag,
            branch=branch,
            use_cached=use_cached,
        )

    @classmethod
    def for_node(
        cls,
        node: "BaseNode",
        map_variable: defaults.TypeMapVariable,
        *,
        run_id: str,
        pipeline_file: str,
        configuration_file: str,
        parameters_file: str = "",
        tag: str = "",
        fan: str = "",
    ) -> "StepRequest":
        """The request for ``node`` at a map position given as a mapping."""
        return cls(
            run_id=run_id,
            pipeline_file=pipeline_file,
            step=node.internal_name,
            configuration_file=configuration_file,
            map_variable=json.dumps(map_variable) if map_variable else "",
            parameters_file=parameters_file,
            tag=tag,
            fan=fan,
        )

    def map_values(self) -> defaults.TypeMapVariable:
        """The map position as a mapping (None outside maps).

        Raises:
            UserInputError: the map variable is not a JSON object.
        """
        if not self.map_variable:
            return None
        try:
            decoded = json.loads(self.map_variable)
        except ValueError as exc:
            raise UserInputError(f"--map-variable: not JSON: {exc}") from exc
        if not isinstance(decoded, dict):
            raise UserInputError("--map-variable: must be a JSON object of {iterate_as: value}")
        return decoded

    def to_argv(self, program: Sequence[str] = ("magnus",)) -> List[str]:
        """The command line running this request; ``program`` is how ``magnus`` is started there."""
        step = self.step.replace(" ", defaults.COMMAND_FRIENDLY_CHARACTER)
        if self.fan:
            argv = [*program, FAN, self.run_id, step, "-f", self.pipeline_file, "-m", self.fan]
        elif self.branch:
            branch = self.branch.replace(" ", defaults.COMMAND_FRIENDLY_CHARACTER)
            argv = [*program, BRANCH, self.run_id, self.pipeline_file, step, branch]
        else:
            argv = [*program, EXECUTE, self.run_id, self.pipeline_file, step]
        argv += _flags(
            ("--map-variable", self.map_variable),
            ("--iterations-file", self.iterations_file),
            ("--retry", self.retry),
            ("--use-cached", self.use_cached),
        )
        argv += ["-c", self.configuration_file]
        return argv + _flags(("-p", self.parameters_file), ("--tag", self.tag))

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> "StepRequest":
        """Read back what [`to_argv`][] wrote (``argv`` without the program).

        Raises:
            UserInputError: not a step request's command line.
        """
        if not argv or argv[0] not in (EXECUTE, FAN, BRANCH):
            raise UserInputError(f"not a step request: expected {EXECUTE}, {FAN} or {BRANCH}, got {' '.join(argv[:1])}")
        import argparse  # only processes reading a request back pay for it

        parser = _parser(argv[0])
        try:
            parsed = parser.parse_args(list(argv[1:]))
        except (SystemExit, argparse.ArgumentError):
            raise UserInputError(f"not a step request: {' '.join(argv)}") from None
        step = parsed.step.replace(defaults.COMMAND_FRIENDLY_CHARACTER, " ")
        branch = getattr(parsed, "branch", "").replace(defaults.COMMAND_FRIENDLY_CHARACTER, " ")
        return cls(
            run_id=parsed.run_id,
            pipeline_file=parsed.file if argv[0] == FAN else parsed.pipeline_file,
            step=step,
            configuration_file=parsed.config_file,
            map_variable=parsed.map_variable,
            parameters_file=parsed.parameters_file,
            tag=parsed.tag,
            fan=getattr(parsed, "mode", ""),
            iterations_file=parsed.iterations_file,
            branch=branch,
            use_cached=parsed.use_cached,
            retry=parsed.retry,
        )


def run_argv(options: "RunOptions", program: Sequence[str] = ("magnus",)) -> List[str]:
    """The ``magnus execute`` line of a whole run, to walk it in another process (a detached SLURM job).

    ``options.run_id`` must be set: the process started reuses it, so both sides name one run.
    """
    if not options.run_id:
        raise UserInputError("a run handed to another process needs its run id")
    argv = [*program, "execute", "-f", options.pipeline_file, "--run-id", options.run_id]
    return argv + _flags(
        ("-c", options.configuration_file),
        ("-p", options.parameters_file),
        ("--tag", options.tag),
        ("--use-cached", options.use_cached),
    )


def _flags(*options: Tuple[str, str]) -> List[str]:
    """``flag value`` for each option that has a value, in the order given."""
    return [part for flag, value in options if value for part in (flag, value)]


def _parser(command: str) -> "argparse.ArgumentParser":
    import argparse

    parser = argparse.ArgumentParser(prog=f"magnus {command}", add_help=False, exit_on_error=False)
    parser.add_argument("run_id")
    if command in (EXECUTE, BRANCH):
        parser.add_argument("pipeline_file")
        parser.add_argument("step")
        if command == BRANCH:
            parser.add_argument("branch")
    else:
        parser.add_argument("step")
        parser.add_argument("-f", "--file", required=True)
        parser.add_argument("-m", "--mode", required=True, choices=FAN_MODES)
    parser.add_argument("--map-variable", default="")
    parser.add_argument("--iterations-file", default="")
    parser.add_argument("--retry", default="")
    parser.add_argument("--use-cached", default="")
    parser.add_argument("-c", "--config-file", default="")
    parser.add_argument("-p", "--parameters-file", default="")
    parser.add_argument("--tag", default="")
    return parser

"""The launch protocol: how the process walking a run asks another process to do one unit of it.

A container, a pod, a SLURM job or a Ray task does one unit of a run from a command line that a
request renders, and ``magnus`` reads that command line back into the same value. Requests are
typed values, one class per kind of unit, sharing the run's options (its id, files, tag, the run it
resumes: :class:`~magnus.runtime.services.RunOptions`); executors hand
``request.to_argv(program)`` to their engine and never assemble a command line themselves::

    magnus execute_single_node RUN_ID PIPELINE STEP [--map-variable JSON] [--retry N] [--use-cached OLD]
        [--then-end] -c CONFIG [-p PARAMS] [--tag TAG]
    magnus fan RUN_ID STEP -f PIPELINE -m out [--map-variable JSON] [--iterations-file PATH] [--use-cached OLD] ...
    magnus fan RUN_ID STEP -f PIPELINE -m in [--map-variable JSON] [--use-cached OLD] ...
    magnus fan RUN_ID STEP -f PIPELINE -m next [--map-variable JSON] [--iterations-file PATH] ...
    magnus execute_branch RUN_ID PIPELINE STEP BRANCH [--map-variable JSON] [--use-cached OLD] -c CONFIG ...

The click commands of :mod:`magnus.cli` are thin shells over :meth:`LaunchRequest.from_options`,
so the command line is written (here) and read (there) by one grammar; magnus 0.5.1's command
names and options keep working. Step and branch names travel with ``%`` for each space (magnus
0.5.1's rule), encoded and decoded in `magnus.runtime.command_line`.

Values may be placeholders an engine fills in (``{{workflow.parameters.run_id}}``,
``{{retries}}``): the run id, the map position and the retry number are carried as text. Such an
engine fills them in whatever text it is handed, so a value of the user's that it must pass on as
written (a map position, a parameter) is JSON in which ``{{`` never occurs
(:func:`without_double_braces`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Sequence, Tuple, Type

from magnus import defaults
from magnus.errors import UserInputError
from magnus.map_position import position_from_json
from magnus.runtime.command_line import decode_name, encode_name, flags, run_flags
from magnus.runtime.services import RunOptions

EXECUTE = defaults.EXECUTE_COMMAND
FAN = defaults.FAN_COMMAND
BRANCH = defaults.BRANCH_COMMAND

_BRACE_BEFORE_BRACE = re.compile(r"\{(?=\{)")


def without_double_braces(json_text: str) -> str:
    """``json_text`` (valid JSON) written so that ``{{`` never occurs in it; it decodes to the same value.

    An engine that fills ``{{...}}`` placeholders (Argo fills them in every string of a workflow,
    values it filled in included) then finds none in the value, and passes it on as written. A
    ``{`` followed by ``{`` can only be inside a JSON string (an object never starts with an
    object), where it is written as the escape ``\\u007b``.
    """
    return _BRACE_BEFORE_BRACE.sub(r"\\u007b", json_text)


@dataclass(frozen=True)
class LaunchRequest:
    """One unit of a run to do in the process the command line starts.

    ``step`` is the node's internal name (map parts as the placeholder); ``map_variable`` the JSON
    of the map position ('' outside maps, written by ``magnus.map_position.position_json``).
    ``environment`` holds variables the launched process needs besides its command line (the
    experiment tracker's, e.g. a trace context: ``launch_environment``), as ``(name, value)`` pairs;
    an executor starting a container or a job adds them to its environment
    ([`environment_variables`][]). They are not part of the command line.
    """

    command: ClassVar[str] = ""
    run: RunOptions
    step: str
    map_variable: str = ""
    environment: Tuple[Tuple[str, str], ...] = ()

    def environment_variables(self) -> Dict[str, str]:
        """The variables to add to the launched process's environment."""
        return dict(self.environment)

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
        try:
            return position_from_json(decoded)
        except ValueError as exc:
            raise UserInputError(f"--map-variable: {exc}") from None

    def to_argv(self, program: Sequence[str] = ("magnus",)) -> List[str]:
        """The command line doing this request; ``program`` is how ``magnus`` is started there."""
        run = self.run
        options = flags(("--map-variable", self.map_variable), *self._options(), ("--use-cached", run.use_cached))
        return [*program, *self._head(), *options, *self._switches(), *run_flags(run)]

    def _head(self) -> List[str]:
        return [self.command, self.run.run_id, self.run.pipeline_file, encode_name(self.step)]

    def _options(self) -> Tuple[Tuple[str, str], ...]:
        return ()

    def _switches(self) -> List[str]:
        return []

    @classmethod
    def from_options(cls, **options: Any) -> "LaunchRequest":
        """The request a command's parsed options give (what a command of `magnus.cli` received).

        Options are the command's: ``run_id``, ``pipeline_file``, ``step_name``, ``config_file``,
        ``parameters_file``, ``tag``, ``use_cached``, ``map_variable`` and the kind's own.
        """
        run = RunOptions(
            run_id=options["run_id"],
            pipeline_file=options["pipeline_file"],
            configuration_file=options.get("config_file", ""),
            parameters_file=options.get("parameters_file", ""),
            tag=options.get("tag", ""),
            use_cached=options.get("use_cached", ""),
            cache=bool(options.get("cache", False)),
        )
        return cls(run=run, step=decode_name(options["step_name"]), map_variable=options.get("map_variable", ""))


@dataclass(frozen=True)
class RunStep(LaunchRequest):
    """Run one step (or end a branch at a terminal node). ``retry`` is the engine's count of earlier
    launches of it (Argo's ``{{retries}}``; '' or 0 for the first): the attempts of this launch are
    numbered after them, so a step an engine retried shows attempts 1, 2, 3 in its log.

    ``then_end`` (``--then-end``): the step is followed by its dag's success node, and the same
    process records that end once the step succeeded (the run's, at the top): an engine whose
    every unit is a job of its own (AWS Batch) saves the job of the end.
    """

    command: ClassVar[str] = EXECUTE
    retry: str = ""
    then_end: bool = False

    def _options(self) -> Tuple[Tuple[str, str], ...]:
        return (("--retry", self.retry),)

    def _switches(self) -> List[str]:
        return ["--then-end"] if self.then_end else []

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
    def from_options(cls, **options: Any) -> "RunStep":
        base = LaunchRequest.from_options(**options)
        return cls(
            run=base.run,
            step=base.step,
            map_variable=base.map_variable,
            retry=options.get("retry", ""),
            then_end=bool(options.get("then_end", False)),
        )


@dataclass(frozen=True)
class FanOut(LaunchRequest):
    """Record a composite step and its branches. With ``iterations_file``, also write there the JSON
    list of the branches' map variables (each a JSON text), which engines that fan out themselves
    (Argo's ``withParam``, a SLURM job array) iterate over; for a step that chooses its branch (a
    conditional), the label of the branch chosen, as plain text (what Argo's ``when`` compares)."""

    command: ClassVar[str] = FAN
    iterations_file: str = ""

    def _head(self) -> List[str]:
        return [FAN, self.run.run_id, encode_name(self.step), "-f", self.run.pipeline_file, "-m", "out"]

    def _options(self) -> Tuple[Tuple[str, str], ...]:
        return (("--iterations-file", self.iterations_file),)

    @classmethod
    def from_options(cls, **options: Any) -> "FanOut":
        base = LaunchRequest.from_options(**options)
        iterations = options.get("iterations_file", "")
        return cls(run=base.run, step=base.step, map_variable=base.map_variable, iterations_file=iterations)


@dataclass(frozen=True)
class FanIn(LaunchRequest):
    """Settle a composite step from how its branches ended (and merge what they set)."""

    command: ClassVar[str] = FAN

    def _head(self) -> List[str]:
        return [FAN, self.run.run_id, encode_name(self.step), "-f", self.run.pipeline_file, "-m", "in"]


@dataclass(frozen=True)
class NextIteration(LaunchRequest):
    """A loop's latest iteration ended: decide and record the next one (or the loop's end). With
    ``iterations_file``, write there the JSON list of the next iteration's map variable (``[]``
    when the loop ends), which an engine looping by recursion (Argo) iterates over."""

    command: ClassVar[str] = FAN
    iterations_file: str = ""

    def _head(self) -> List[str]:
        return [FAN, self.run.run_id, encode_name(self.step), "-f", self.run.pipeline_file, "-m", "next"]

    def _options(self) -> Tuple[Tuple[str, str], ...]:
        return (("--iterations-file", self.iterations_file),)

    @classmethod
    def from_options(cls, **options: Any) -> "NextIteration":
        base = LaunchRequest.from_options(**options)
        iterations = options.get("iterations_file", "")
        return cls(run=base.run, step=base.step, map_variable=base.map_variable, iterations_file=iterations)


@dataclass(frozen=True)
class WalkBranch(LaunchRequest):
    """Walk one branch of the composite ``step`` (all its steps, in this process) at ``map_variable``,
    the position its steps see (for a map's branch, the item). ``branch`` is the branch's internal
    name (map parts as the placeholder); the composite was fanned out already."""

    command: ClassVar[str] = BRANCH
    branch: str = ""

    def _head(self) -> List[str]:
        return [*super()._head(), encode_name(self.branch)]

    @classmethod
    def from_options(cls, **options: Any) -> "WalkBranch":
        base = LaunchRequest.from_options(**options)
        branch = decode_name(options["branch"])
        return cls(run=base.run, step=base.step, map_variable=base.map_variable, branch=branch)


def fan_request(mode: str, **options: Any) -> LaunchRequest:
    """``magnus fan -m out|in|next``: the request of the mode.

    Raises:
        UserInputError: an option the mode does not take.
    """
    kinds: Dict[str, Type[LaunchRequest]] = {"out": FanOut, "in": FanIn, "next": NextIteration}
    if mode not in kinds:
        raise UserInputError(f"--mode must be 'in', 'out' or 'next', got '{mode}'")
    if mode == "in" and options.get("iterations_file"):
        raise UserInputError("--iterations-file is written by a fan-out (-m out) or a loop's next iteration (-m next)")
    return kinds[mode].from_options(**options)

"""``executor: {type: slurm, config: {partition: ..., time: ..., ...}}``: every step a SLURM job.

The graph is walked by this process (or, with ``detach: true``, by a small job of its own). Each
task or stub step is one job running its :class:`~magnus.runtime.request.StepRequest`
(``magnus execute_single_node ...``) in the folder the run was submitted from; the job writes the
step's log to the run log store, where the walk reads it. The branches of a map or a parallel
step are one job array, one ``sbatch`` whatever their number: array task ``i`` walks branch ``i``
(``magnus execute_branch ...``), its steps in turn in that job, nested composites included.

One ``squeue`` per poll reads the state of every job of the run (see
:mod:`magnus_executor_slurm.scheduler`). A job that ended without recording its step (time
limit, memory, cancelled, node failure, preemption, a crash) fails that step with the SLURM
state, the job id and the last lines of its output; ``max_attempts`` resubmits such a step.
Ctrl-C, or SIGTERM to a detached walk, cancels every job of the run and ends it FAIL.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Callable, ClassVar, Dict, Iterator, List, Optional, Sequence

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.datastore.models import StepAttempt
from magnus.errors import ConfigurationError, MagnusError
from magnus.executor.base import WalkingExecutor
from magnus.runtime.request import StepRequest, run_argv
from magnus.runtime.step import INTERRUPTED
from magnus.timing import now
from magnus_executor_slurm.config import JobResources
from magnus_executor_slurm.scheduler import JobState, Scheduler
from magnus_executor_slurm.script import job_script

if TYPE_CHECKING:
    from magnus.datastore.models import StepLog
    from magnus.nodes.base import BaseNode, ExecutableNode
    from magnus.nodes.composite import BranchRun
    from magnus.runtime.services import RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)

# Set in the job that walks a detached run: that process walks instead of submitting again.
ENV_DETACHED_WALK = "MAGNUS_SLURM_WALK"
TAIL_LINES = 20
# Final states of a job that died, and what they mean to someone reading the step's message.
EXPLAINED = {
    "TIMEOUT": "ran past its time limit",
    "OUT_OF_MEMORY": "ran out of memory",
    "CANCELLED": "was cancelled",
    "NODE_FAIL": "lost its node",
    "PREEMPTED": "was preempted",
    "BOOT_FAIL": "could not boot its node",
    "DEADLINE": "missed its deadline",
    "FAILED": "failed",
    "COMPLETED": "ended",
    "UNKNOWN": "vanished",
}
# Deaths not worth a resubmission: somebody cancelled the job on purpose.
NOT_RETRIED = frozenset({"CANCELLED"})


class RunInterrupted(MagnusError):
    """The walk was interrupted (Ctrl-C, SIGTERM): the run's jobs were cancelled, the run ended FAIL."""

    exit_code = 130


class SlurmExecutor(WalkingExecutor, JobResources):
    """Runs every step as a SLURM job and every map or parallel step as one job array."""

    service_name: ClassVar[str] = "slurm"
    runs_steps_elsewhere: ClassVar[bool] = True

    job_name_prefix: str = Field(default="magnus", description="Jobs are named <prefix>-<run id>.")
    output_folder: str = Field(
        default=".magnus/slurm", description="Where job scripts, outputs and exit files go, one folder per run."
    )
    poll_interval: float = Field(default=10.0, gt=0, description="Longest wait between two status queries (s).")
    array_parallelism: Optional[int] = Field(
        default=None, ge=1, description="At most this many tasks of an array run at once (%K)."
    )
    detach: bool = Field(default=False, description="Submit the walk itself as a job; magnus execute returns.")
    magnus_command: List[str] = Field(
        default_factory=list,
        description="How jobs start magnus (default: this python -m magnus, from the same environment).",
    )
    overrides: Dict[str, JobResources] = Field(
        default_factory=dict, description="Named changes for single steps, chosen by overrides: {slurm: name}."
    )

    _scheduler: Optional[Scheduler] = PrivateAttr(default=None)
    _pipeline_file: str = PrivateAttr(default="")
    _submitted_from: str = PrivateAttr(default="")

    # ---- before anything runs ---------------------------------------------------------------------
    def check(self, services: "RunServices") -> None:
        """Refuse unknown overrides, a missing configuration file and services jobs cannot share.

        A pipeline built with the SDK is written to ``.magnus/<run_id>-pipeline.yaml`` for the jobs.
        """
        assert services.pipeline is not None, "a run walks a pipeline"
        self.check_override_names(services.pipeline.graph, self.overrides)
        self.step_configuration_file(services)
        for kind, service in services.services().items():
            if not service.shared_between_processes:
                raise ConfigurationError(
                    f"executor slurm: {kind} '{service.service_name}' keeps its state in this process, which "
                    "SLURM jobs cannot see: use one on a shared file system or a server (run_log_store: "
                    "file-system, chunked-fs or db; catalog: file-system or fsspec)"
                )
        written_to = Path(".magnus") / f"{services.run_id}-pipeline.yaml"
        self._pipeline_file = self.step_pipeline_file(services, written_to)
        self._submitted_from = os.getcwd()

    def program(self) -> List[str]:
        return list(self.magnus_command) or [sys.executable, "-m", "magnus"]

    def run_folder(self, run_id: str) -> Path:
        return (Path(self._submitted_from or os.getcwd()) / self.output_folder / run_id).resolve()

    # ---- the run -------------------------------------------------------------------------------------
    def execute_pipeline(self, services: "RunServices") -> str:
        """Walk here, each step a job; or with ``detach``, submit the walk and return ``TRIGGERED``."""
        folder = self.run_folder(services.run_id)
        (folder / "exit").mkdir(parents=True, exist_ok=True)
        if self.detach and os.environ.get(ENV_DETACHED_WALK) != services.run_id:
            return self._submit_walk(services, folder)
        self._scheduler = Scheduler(f"{self.job_name_prefix}-{services.run_id}", self.poll_interval, folder / "exit")
        with _sigterm_interrupts():
            try:
                return super().execute_pipeline(services)
            except KeyboardInterrupt:
                self._scheduler.cancel_all()
                raise RunInterrupted(
                    f"run '{services.run_id}' was interrupted: its SLURM jobs were cancelled and it ended FAIL; "
                    f"resume it with: magnus execute ... --use-cached {services.run_id}"
                ) from None

    def _submit_walk(self, services: "RunServices", folder: Path) -> str:
        """Submit ``magnus execute`` of this run as a job (named ``<prefix>-<run id>-walk``)."""
        scheduler = Scheduler(f"{self.job_name_prefix}-{services.run_id}-walk", self.poll_interval, folder / "exit")
        argv = run_argv(services.options, program=self.program())
        resources = self.model_copy(update={"environment": {**self.environment, ENV_DETACHED_WALK: services.run_id}})
        job_id = self._submit(
            scheduler, resources, [argv], folder, "walk", title=f"magnus run {services.run_id}: the walk"
        )
        print(
            f"run '{services.run_id}' submitted: SLURM job {job_id} walks it "
            f"(output {folder / f'walk-{job_id}.out'}); scancel {job_id} cancels the run",
            flush=True,
        )
        return defaults.TRIGGERED

    # ---- one step, one job ---------------------------------------------------------------------------
    def run_step(
        self,
        services: "RunServices",
        node: "ExecutableNode",
        map_variable: defaults.TypeMapVariable,
        step_log: "StepLog",
    ) -> Optional["StepLog"]:
        """Submit the step as a job and wait; the job records the step (None), or we record its death."""
        scheduler = self._scheduler
        assert scheduler is not None, "run_step is called within execute_pipeline"
        store, name = services.run_log_store, step_log.internal_name
        request = self.step_request(services, node, map_variable, pipeline_file=self._pipeline_file)
        folder = self.run_folder(services.run_id)
        resources = self.merged(self._override(node))
        for submission in range(1, node.max_attempts + 1):
            job_id = self._submit(
                scheduler, resources, [request.to_argv(self.program())], folder, _label(name), title=f"step {name}"
            )
            try:
                state = scheduler.wait([job_id])[job_id]
            except KeyboardInterrupt:
                self._record_death(services, name, JobState(job_id, "CANCELLED", "the walk was interrupted"), folder)
                raise
            recorded = store.get_step_log(services.run_id, name)
            if recorded.status != defaults.PROCESSING:  # the job recorded the step
                if recorded.status == defaults.FAIL:
                    output = self._output(folder, name, job_id)
                    if recorded.message == INTERRUPTED and state.state in EXPLAINED:
                        # SLURM's SIGTERM (time limit, cancel, preemption) reached the step: say why.
                        message = services.redactor.redact(self._death_message(state, output, recorded=True))
                    else:
                        message = f"{recorded.message} (SLURM job {job_id} {state.state}, output {output})"
                    store.update_step_log_status(services.run_id, name, defaults.FAIL, message)
                return None
            if submission < node.max_attempts and state.state not in NOT_RETRIED:
                logger.warning("step %s: SLURM job %s %s; resubmitting", name, job_id, state.state)
                self._record_death(services, name, state, folder, final=False)
                continue
            self._record_death(services, name, state, folder)
        return None

    def _override(self, node: "BaseNode") -> Optional[JobResources]:
        chosen = node.override_name(self.service_name)
        return self.overrides[chosen] if chosen else None

    # ---- branches, one job array ----------------------------------------------------------------------
    def run_branches(
        self, services: "RunServices", runs: Sequence["BranchRun"], run_branch: Callable[["BranchRun"], str]
    ) -> None:
        """All branches of the step as one job array; a lone branch (a dag step) walked here, step by step."""
        scheduler = self._scheduler
        if scheduler is None or len(runs) <= 1:
            super().run_branches(services, runs, run_branch)
            return
        options = services.options
        requests = [
            StepRequest.for_branch(
                run,
                run_id=services.run_id,
                pipeline_file=self._pipeline_file,
                configuration_file=self.step_configuration_file(services),
                parameters_file=options.parameters_file,
                tag=options.tag,
                use_cached=options.use_cached,
            )
            for run in runs
        ]
        composite = requests[0].step
        node = services.pipeline.graph.find_node(composite) if services.pipeline else None
        resources = self.merged(self._override(node) if node is not None else None)
        folder = self.run_folder(services.run_id)
        label = _label(runs[0].name.rsplit(".", 1)[0])
        throttle = f"%{self.array_parallelism}" if self.array_parallelism else ""
        array_id = self._submit(
            scheduler,
            resources,
            [request.to_argv(self.program()) for request in requests],
            folder,
            label,
            title=f"branches of {composite}",
            array=f"--array=0-{len(runs) - 1}{throttle}",
        )
        tasks = [f"{array_id}_{index}" for index in range(len(runs))]
        try:
            states = scheduler.wait(tasks)
        except KeyboardInterrupt:
            for run, task in zip(runs, tasks, strict=True):
                self._record_branch_death(
                    services, run, JobState(task, "CANCELLED", "the walk was interrupted"), folder, label
                )
            raise
        for run, task in zip(runs, tasks, strict=True):
            self._record_branch_death(services, run, states[task], folder, label)

    def _record_branch_death(
        self, services: "RunServices", run: "BranchRun", state: JobState, folder: Path, label: str
    ) -> None:
        """A branch its array task left unfinished: its unfinished steps and itself FAIL, saying why."""
        store = services.run_log_store
        branch = store.get_branch_log(services.run_id, run.name)
        if branch.status != defaults.PROCESSING:
            return
        message = self._death_message(state, folder / f"{label}-{state.job_id}.out")
        for step in _unfinished(branch.steps):
            step.status = defaults.FAIL
            step.message = message
            step.attempts.append(StepAttempt(status=defaults.FAIL, start_time=now(), end_time=now(), message=message))
            store.add_step_log(services.run_id, step)
        store.update_branch_log_status(services.run_id, run.name, defaults.FAIL)

    # ---- jobs ------------------------------------------------------------------------------------------
    def _submit(
        self,
        scheduler: Scheduler,
        resources: JobResources,
        commands: Sequence[Sequence[str]],
        folder: Path,
        label: str,
        *,
        title: str,
        array: str = "",
    ) -> str:
        number = len(scheduler.submitted)
        script = folder / f"{label}-{number}.sh"
        script.write_text(
            job_script(
                commands,
                folder=Path(self._submitted_from or os.getcwd()),
                exit_folder=scheduler.exit_folder,
                prologue=resources.prologue,
                environment=resources.environment,
                title=f"magnus: {title}",
            )
        )
        pattern = "%A_%a" if array else "%j"
        arguments = [f"--output={folder / f'{label}-{pattern}.out'}", *resources.sbatch_arguments()]
        return scheduler.submit(script, [*arguments, *([array] if array else [])])

    def _output(self, folder: Path, name: str, job_id: str) -> Path:
        return folder / f"{_label(name)}-{job_id}.out"

    def _death_message(self, state: JobState, output: Path, recorded: bool = False) -> str:
        """What a reader of the step needs: the SLURM state, the job id and the end of its output.

        ``recorded``: the step saw SLURM's signal and recorded itself interrupted before it died.
        """
        scheduler = self._scheduler
        exit_status = scheduler.exit_status(state.job_id) if scheduler else None
        explained = EXPLAINED.get(state.state, state.state.lower())
        detail = f", exit {exit_status}" if exit_status not in (None, "0") else ""
        reason = f" ({state.reason})" if state.reason and state.reason != "None" else ""
        when = "the step interrupted by its signal" if recorded else "before recording the step"
        message = f"SLURM job {state.job_id} {explained}: {state.state}{reason}{detail}, {when}"
        tail = _tail(output)
        if tail:
            message += f"; last lines of {output}:\n{tail}"
        else:
            message += f"; no output at {output}"
        return message

    def _record_death(
        self, services: "RunServices", name: str, state: JobState, folder: Path, final: bool = True
    ) -> None:
        """The job of step ``name`` ended without recording it: one more FAIL attempt; FAIL when ``final``."""
        store = services.run_log_store
        step_log = store.get_step_log(services.run_id, name)
        message = services.redactor.redact(self._death_message(state, self._output(folder, name, state.job_id)))
        step_log.attempts.append(
            StepAttempt(
                attempt_number=len(step_log.attempts) + 1,
                status=defaults.FAIL,
                start_time=now(),
                end_time=now(),
                message=message,
            )
        )
        if final:
            step_log.status = defaults.FAIL
            step_log.message = message
        store.add_step_log(services.run_id, step_log)


def _label(name: str) -> str:
    """A step or branch name as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "step"


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _unfinished(steps: Dict[str, "StepLog"]) -> Iterator["StepLog"]:
    """Steps still PROCESSING, nested ones included (the crash happened inside them)."""
    for step in steps.values():
        if step.status == defaults.PROCESSING:
            yield step
        for branch in step.branches.values():
            yield from _unfinished(branch.steps)


class _sigterm_interrupts:
    """Within the block SIGTERM (scancel of a detached walk) interrupts the walk as Ctrl-C does."""

    def __enter__(self) -> None:
        self._previous: Optional[object] = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, _interrupt)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise KeyboardInterrupt

"""``executor: {type: slurm, config: {partition: ..., time: ..., ...}}``: every step a SLURM job.

The run is walked by this process (or, with ``detach: true``, by a small job of its own). Each
task or stub step is one job doing its launch request (``magnus execute_single_node ...``) in the
folder the run was submitted from; the job writes the step's log to the run log store, where the
walk reads it. The branches of a map or a parallel step are one job array, one ``sbatch`` whatever
their number: array task ``i`` walks branch ``i`` (``magnus execute_branch ...``), its steps in
turn in that job, nested composites included.

One ``squeue`` per poll reads the state of every job of the run (see
:mod:`magnus_executor_slurm.scheduler`). A job that ended without recording its step (time
limit, memory, cancelled, node failure, preemption, a crash) is reported with the SLURM state,
the job id and the last lines of its output, which core records (and resubmits while the step has
``max_attempts`` left); Ctrl-C, or SIGTERM to a detached walk, cancels every job of the run.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Dict, List, Mapping, Optional, Sequence

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.executor.base import StepHandlerExecutor
from magnus.reach import Reach
from magnus.runtime.command_line import execute_argv
from magnus.runtime.handler import Ended, Handle
from magnus_executor_slurm.config import JobResources
from magnus_executor_slurm.scheduler import BACKOFF, FIRST_POLL, JobState, Scheduler
from magnus_executor_slurm.script import job_script

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices
    from magnus.runtime.units import Unit

logger = logging.getLogger(defaults.LOGGER_NAME)

# Set in the job that walks a detached run: that process walks instead of submitting again.
ENV_DETACHED_WALK = "MAGNUS_SLURM_WALK"
TAIL_LINES = 20
# How long an interrupted walk waits for its cancelled jobs to end.
CANCEL_GRACE_SECONDS = 30.0
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


class SlurmExecutor(StepHandlerExecutor, JobResources):
    """Runs every step as a SLURM job and the branches of every map or parallel step as one job array."""

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
    _outputs: Dict[str, Path] = PrivateAttr(default_factory=dict)  # each job's output file
    _submitted_from: str = PrivateAttr(default="")
    _wait: float = PrivateAttr(default=FIRST_POLL)

    # ---- before anything runs ---------------------------------------------------------------------
    def needed_reach(self) -> Reach:
        return Reach.ANYWHERE

    def folders_problem(self, folders: Sequence[str]) -> str:
        """Jobs run in the folder the run was submitted from, on the cluster's shared file system: they see it."""
        return ""

    def reach_fix(self) -> str:
        return "use one on a shared file system or a server (run_log_store: file-system, chunked-fs or db)"

    def where_steps_run(self) -> str:
        return "in SLURM jobs"

    def check(self, services: "RunServices") -> None:
        """Refuse unknown overrides."""
        self.check_override_names(services.pipeline.graph, self.overrides)
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
        return super().execute_pipeline(services)

    def _submit_walk(self, services: "RunServices", folder: Path) -> str:
        """Submit ``magnus execute`` of this run as a job (named ``<prefix>-<run id>-walk``)."""
        scheduler = Scheduler(f"{self.job_name_prefix}-{services.run_id}-walk", self.poll_interval, folder / "exit")
        argv = execute_argv(self.reference(services), program=self.program())
        resources = self.model_copy(update={"environment": {**self.environment, ENV_DETACHED_WALK: services.run_id}})
        job_id = self._submit(scheduler, resources, [argv], "walk", title=f"magnus run {services.run_id}: the walk")
        print(
            f"run '{services.run_id}' submitted: SLURM job {job_id} walks it "
            f"(output {self._outputs[job_id]}); scancel {job_id} cancels the run",
            flush=True,
        )
        return defaults.TRIGGERED

    # ---- units as jobs -----------------------------------------------------------------------------------
    def capacity(self) -> int:
        return 0  # the scheduler queues what the cluster cannot run yet

    def launch(self, unit: "Unit") -> Handle:
        """Submit the step as a job."""
        resources = self.merged(self.override_of(unit.node, self.overrides))
        request = unit.request()
        return self._submit(
            self._running(),
            resources,
            [request.to_argv(self.program())],
            _label(unit.name),
            title=f"step {unit.name}",
            task_environments=[request.environment_variables()],
        )

    def launches_branches(self, composite: "Unit", count: int) -> bool:
        """The branches of a map or parallel step: one job array; a lone branch (a dag step) is walked here."""
        return count > 1

    def launch_branches(self, units: Sequence["Unit"]) -> List[Handle]:
        """Submit one job array, task ``i`` walking branch ``i``."""
        node = units[0].node
        resources = self.merged(self.override_of(node, self.overrides))
        throttle = f"%{self.array_parallelism}" if self.array_parallelism else ""
        requests = [unit.request() for unit in units]
        array_id = self._submit(
            self._running(),
            resources,
            [request.to_argv(self.program()) for request in requests],
            _label(node.step_log_name(units[0].map_variable)),
            title=f"branches of {node.internal_name}",
            array=f"--array=0-{len(units) - 1}{throttle}",
            task_environments=[request.environment_variables() for request in requests],
        )
        return [f"{array_id}_{index}" for index in range(len(units))]

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """One ``squeue`` for every job of the run, after the wait its backoff asks (up to ``poll_interval``)."""
        scheduler = self._running()
        time.sleep(self._wait)
        self._wait = min(self._wait * BACKOFF, self.poll_interval)
        states = scheduler.final_states([str(handle) for handle in handles])
        return {job_id: self._ended(state) for job_id, state in states.items()}

    def cancel(self, handles: Sequence[Handle]) -> Dict[Handle, Ended]:
        """``scancel`` every job of the run (one call), and wait a little for them to end (their steps
        record the interrupt first, so what core adds is the last word)."""
        scheduler = self._running()
        scheduler.cancel_all()
        pending = {str(handle) for handle in handles}
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        while pending and time.monotonic() < deadline:
            time.sleep(FIRST_POLL)
            pending -= set(scheduler.final_states(pending))
        return {handle: self._ended(JobState(str(handle), "CANCELLED", "by the walk")) for handle in handles}

    def _running(self) -> Scheduler:
        assert self._scheduler is not None, "jobs are submitted within execute_pipeline"
        return self._scheduler

    def _ended(self, state: JobState) -> Ended:
        """What core needs of a job that ended: how, the end of its output, whether to resubmit it."""
        output = self._outputs.get(state.job_id, Path(f"{state.job_id}.out"))
        exit_status = self._running().exit_status(state.job_id)
        explained = EXPLAINED.get(state.state, state.state.lower())
        detail = f", exit {exit_status}" if exit_status not in (None, "0") else ""
        why = f" ({state.reason})" if state.reason and state.reason != "None" else ""
        tail = _tail(output)
        return Ended(
            reason=f"SLURM job {state.job_id} {explained}: {state.state}{why}{detail}",
            detail=f"last lines of {output}:\n{tail}" if tail else f"no output at {output}",
            retry=state.state not in NOT_RETRIED,
            note=f"SLURM job {state.job_id} {state.state}, output {output}",
        )

    def _submit(
        self,
        scheduler: Scheduler,
        resources: JobResources,
        commands: Sequence[Sequence[str]],
        label: str,
        *,
        title: str,
        array: str = "",
        task_environments: Sequence[Mapping[str, str]] = (),
    ) -> str:
        folder = scheduler.exit_folder.parent
        script = folder / f"{label}-{len(scheduler.submitted)}.sh"
        script.write_text(
            job_script(
                commands,
                folder=Path(self._submitted_from or os.getcwd()),
                exit_folder=scheduler.exit_folder,
                prologue=resources.prologue,
                environment=resources.environment,
                title=f"magnus: {title}",
                task_environments=task_environments,
            )
        )
        pattern = "%A_%a" if array else "%j"
        arguments = [f"--output={folder / f'{label}-{pattern}.out'}", *resources.sbatch_arguments()]
        job_id = scheduler.submit(script, [*arguments, *([array] if array else [])])
        self._wait = FIRST_POLL  # a short step ends in seconds: look again soon
        tasks = [f"{job_id}_{index}" for index in range(len(commands))] if array else [job_id]
        for task in tasks:
            self._outputs[task] = folder / f"{label}-{task}.out"
        return job_id


def _label(name: str) -> str:
    """A step or branch name as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "step"


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])

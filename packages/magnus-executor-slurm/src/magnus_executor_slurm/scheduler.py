"""Talking to SLURM: submit, one status query per poll for all of a run's jobs, cancel.

Every job of a run carries the same job name (``<prefix>-<run id>``), so the state of all of
them comes from one ``squeue --name`` call per poll, never one call per job: schedulers at busy
sites are hurt by tools that ask per job. ``--states=all`` keeps finished jobs in that answer
for as long as the controller remembers them (``MinJobAge``). A job it has forgotten is looked
up once in accounting (``sacct``) where accounting is enabled, else in the exit-status file its
script wrote; ``scontrol show job`` is not needed.

The executor polls quickly after a submission (a short step ends in seconds) and backs off to
``poll_interval``, so long jobs cost one query per ``poll_interval``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Dict, List, Optional, Sequence

from magnus.errors import ConfigurationError, MagnusError

# States in which a job may still run; any other state is final.
ACTIVE = frozenset(
    "PENDING RUNNING CONFIGURING COMPLETING SUSPENDED REQUEUED REQUEUE_FED REQUEUE_HOLD RESIZING "
    "SIGNALING STAGE_OUT RESV_DEL_HOLD STOPPED".split()
)
# The first wait after a submission, in seconds; each poll waits BACKOFF times longer, up to poll_interval.
FIRST_POLL = 0.25
BACKOFF = 1.5


@dataclass(frozen=True)
class JobState:
    """A job (``123``) or array task (``123_4``) as the scheduler last reported it."""

    job_id: str
    state: str
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE


class SchedulerError(MagnusError):
    """A SLURM command failed (the controller is down, an option was refused)."""


def _slurm(command: Sequence[str], check: bool = True) -> "subprocess.CompletedProcess[str]":
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise ConfigurationError(
            f"executor slurm: '{command[0]}' is not on the PATH: run magnus where the SLURM commands are"
        ) from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"'{' '.join(command[:2])}' did not answer in 120 s") from None
    if check and done.returncode != 0:
        raise SchedulerError(f"'{' '.join(command)}' failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


class Scheduler:
    """The jobs of one run, all named ``job_name``; what the executor asks the scheduler."""

    def __init__(self, job_name: str, poll_interval: float, exit_folder: Path) -> None:
        self.job_name = job_name
        self.poll_interval = poll_interval
        self.exit_folder = exit_folder
        self.submitted: List[str] = []
        self.queries = 0  # status queries made (squeue and sacct calls)
        self._accounting: Optional[bool] = None

    # ---- submit and cancel -------------------------------------------------------------------------
    def submit(self, script: Path, arguments: Sequence[str]) -> str:
        """``sbatch`` the script with the run's job name; the job id.

        Raises:
            SchedulerError: sbatch refused the job (its message says why: partition, account...).
        """
        done = _slurm(["sbatch", "--parsable", f"--job-name={self.job_name}", *arguments, str(script)])
        job_id = done.stdout.strip().split(";")[0]
        self.submitted.append(job_id)
        return job_id

    def cancel_all(self) -> None:
        """``scancel`` every job of the run still queued or running (one call)."""
        if self.submitted:
            _slurm(["scancel", f"--name={self.job_name}", *self.submitted], check=False)

    # ---- states ------------------------------------------------------------------------------------
    def states(self) -> Dict[str, JobState]:
        """Every job of the run the controller remembers: one ``squeue`` call."""
        self.queries += 1
        done = _slurm(["squeue", "-h", "-r", "--states=all", f"--name={self.job_name}", "-o", "%i|%T|%r"])
        found: Dict[str, JobState] = {}
        for line in done.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                found[parts[0]] = JobState(parts[0], parts[1].split()[0], parts[2])
        return found

    def accounting_enabled(self) -> bool:
        """Whether ``sacct`` answers here (sites without ``slurmdbd`` have it disabled); asked once."""
        if self._accounting is None:
            done = _slurm(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"], check=False)
            self._accounting = done.returncode == 0 and "disabled" not in done.stderr.lower()
        return self._accounting

    def forgotten(self, job_ids: Collection[str]) -> Dict[str, JobState]:
        """Final states of jobs the controller no longer lists: ``sacct`` (one call), else exit files."""
        found: Dict[str, JobState] = {}
        if self.accounting_enabled():
            self.queries += 1
            done = _slurm(["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobID,State"], check=False)
            for line in done.stdout.splitlines():
                job_id, _, state = line.partition("|")
                if job_id in job_ids and state:
                    found[job_id] = JobState(job_id, state.split()[0])
        for job_id in job_ids:
            if job_id not in found:
                found[job_id] = self._from_exit_file(job_id)
        return found

    def _from_exit_file(self, job_id: str) -> JobState:
        path = self.exit_file(job_id)
        if not path.exists():
            return JobState(job_id, "UNKNOWN", "the scheduler forgot the job and it left no exit status")
        status = path.read_text().strip()
        return JobState(job_id, "COMPLETED" if status == "0" else "FAILED", f"exit {status}")

    def exit_file(self, job_id: str) -> Path:
        return self.exit_folder / f"{job_id}.exit"

    def exit_status(self, job_id: str) -> Optional[str]:
        path = self.exit_file(job_id)
        return path.read_text().strip() if path.exists() else None

    # ---- ended jobs --------------------------------------------------------------------------------
    def final_states(self, job_ids: Collection[str]) -> Dict[str, JobState]:
        """The jobs of ``job_ids`` (``123``, or array tasks ``123_4``) that reached a final state.

        One ``squeue`` for all of them; the jobs it no longer lists are looked up once more
        (:meth:`forgotten`).
        """
        listed = self.states()
        final: Dict[str, JobState] = {}
        missing = []
        for job_id in job_ids:
            state = listed.get(job_id)
            if state is None:
                missing.append(job_id)
            elif state.finished:
                final[job_id] = state
        if missing:
            final.update(self.forgotten(missing))
        return final

"""The job scripts ``sbatch`` runs: one command per job, or one per array task.

Every script runs the prologue, exports the configured environment, enters the folder the run
was submitted from (where the pipeline, the configuration and the code are), runs its command
and writes the command's exit status to ``<exit folder>/<job id>.exit``. That file outlives the
scheduler's memory of the job (``MinJobAge``), so a finished job can be told from a vanished one
on clusters without accounting.

The configured environment's names are checked when the configuration is read (POSIX variable
names, :class:`~magnus_executor_slurm.config.JobResources`), so ``export NAME=...`` never runs a
name as shell code; every value is quoted (``shlex.quote``), so it is only ever a value.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Mapping, Sequence

# The id a job is known by in squeue and in its file names: JOBID, or ARRAYJOBID_TASKID.
_JOB_KEY = (
    'JOB_KEY="${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}"; JOB_KEY="${JOB_KEY:-$SLURM_JOB_ID}"'
)


def _quoted(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def job_script(
    commands: Sequence[Sequence[str]],
    *,
    folder: Path,
    exit_folder: Path,
    prologue: Sequence[str],
    environment: Mapping[str, str],
    title: str,
) -> str:
    """A bash script running ``commands[0]``, or with several, command ``$SLURM_ARRAY_TASK_ID``."""
    lines = ["#!/bin/bash", f"# {title}", *prologue]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]
    lines += [f"cd {shlex.quote(str(folder))} || exit 97", _JOB_KEY]
    if len(commands) == 1:
        lines.append(_quoted(commands[0]))
    else:
        lines.append('case "$SLURM_ARRAY_TASK_ID" in')
        lines += [f"  {index}) {_quoted(command)} ;;" for index, command in enumerate(commands)]
        lines.append('  *) echo "no command for array task $SLURM_ARRAY_TASK_ID" >&2; false ;;')
        lines.append("esac")
    lines += ["status=$?", f'echo "$status" > {shlex.quote(str(exit_folder))}/"$JOB_KEY".exit', 'exit "$status"']
    return "\n".join(lines) + "\n"

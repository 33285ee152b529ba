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

import re
import shlex
from pathlib import Path
from typing import List, Mapping, Sequence

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The id a job is known by in squeue and in its file names: JOBID, or ARRAYJOBID_TASKID.
_JOB_KEY = (
    'JOB_KEY="${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}"; JOB_KEY="${JOB_KEY:-$SLURM_JOB_ID}"'
)


def _quoted(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(part) for part in argv)


def _exports(environment: Mapping[str, str]) -> List[str]:
    """``export NAME=value`` lines; a name that is not a POSIX variable name is refused (never run as code).

    Raises:
        ValueError: a name that is not a POSIX variable name.
    """
    for name in environment:
        if not _NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} is not a POSIX name")
    return [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]


def job_script(
    commands: Sequence[Sequence[str]],
    *,
    folder: Path,
    exit_folder: Path,
    prologue: Sequence[str],
    environment: Mapping[str, str],
    title: str,
    task_environments: Sequence[Mapping[str, str]] = (),
) -> str:
    """A bash script running ``commands[0]``, or with several, command ``$SLURM_ARRAY_TASK_ID``.

    ``task_environments``: what each command's launch request adds to its environment (a trace
    context), one per command, exported just before it runs.
    """
    extra = list(task_environments) or [{} for _ in commands]
    lines = ["#!/bin/bash", f"# {title}", *prologue, *_exports(environment)]
    lines += [f"cd {shlex.quote(str(folder))} || exit 97", _JOB_KEY]
    if len(commands) == 1:
        lines += [*_exports(extra[0]), _quoted(commands[0])]
    else:
        lines.append('case "$SLURM_ARRAY_TASK_ID" in')
        lines += [
            f"  {index}) {''.join(line + '; ' for line in _exports(added))}{_quoted(command)} ;;"
            for index, (command, added) in enumerate(zip(commands, extra, strict=True))
        ]
        lines.append('  *) echo "no command for array task $SLURM_ARRAY_TASK_ID" >&2; false ;;')
        lines.append("esac")
    lines += ["status=$?", f'echo "$status" > {shlex.quote(str(exit_folder))}/"$JOB_KEY".exit', 'exit "$status"']
    return "\n".join(lines) + "\n"

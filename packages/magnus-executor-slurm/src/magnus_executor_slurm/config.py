"""What a job asks the scheduler for, and the named changes a step may pick (``overrides``)."""

from __future__ import annotations

import re
from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

_TIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")
# POSIX names of environment variables: the job script exports each one (``export NAME=...``).
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _valid_time(value: Optional[str]) -> Optional[str]:
    if value is not None and not _TIME.match(value):
        raise ValueError(f"time must be HH:MM:SS (or D-HH:MM:SS), got '{value}'")
    return value


class JobResources(BaseModel):
    """The ``sbatch`` options of a job; None leaves the cluster's default."""

    model_config = ConfigDict(extra="forbid")

    partition: Optional[str] = Field(
        default=None, description="--partition (required where the cluster has no default)."
    )
    account: Optional[str] = Field(default=None, description="--account charged for the jobs.")
    qos: Optional[str] = Field(default=None, description="--qos of the jobs.")
    time: Optional[str] = Field(default=None, description="--time limit of each job, HH:MM:SS.")
    cpus_per_task: Optional[int] = Field(default=None, ge=1, description="--cpus-per-task.")
    mem: Optional[str] = Field(default=None, description="--mem per node (4G, 500M).")
    gres: Optional[str] = Field(default=None, description="--gres (gpu:1).")
    extra_args: List[str] = Field(default_factory=list, description="More sbatch arguments, as a list.")
    environment: Dict[str, str] = Field(default_factory=dict, description="Variables exported in the job.")
    prologue: List[str] = Field(
        default_factory=list, description="Shell lines run in every job before the step (module load, activate)."
    )

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: Optional[str]) -> Optional[str]:
        return _valid_time(value)

    @field_validator("environment")
    @classmethod
    def _check_environment(cls, environment: Dict[str, str]) -> Dict[str, str]:
        """Names are pasted into every job script (``export NAME=...``): a name must be a variable
        name, not shell code. Values are quoted there; a NUL byte cannot be in a variable at all."""
        for name, value in environment.items():
            if not _VARIABLE.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not an environment variable name (letters, digits and '_', not starting with a digit)"
                )
            if "\0" in value:
                raise ValueError(f"the value of {name} holds a NUL character")
        return environment

    def merged(self, override: Optional["JobResources"]) -> "JobResources":
        """These resources with ``override``'s set fields instead; environment and lists extended."""
        if override is None:
            return self
        chosen = {name: value for name, value in override.model_dump().items() if value is not None}
        chosen["extra_args"] = [*self.extra_args, *override.extra_args]
        chosen["environment"] = {**self.environment, **override.environment}
        chosen["prologue"] = [*self.prologue, *override.prologue]
        return self.model_copy(update=chosen)

    def sbatch_arguments(self) -> List[str]:
        """The options as ``sbatch`` arguments (the job script sets environment and prologue)."""
        arguments = [
            f"--{flag}={value}"
            for flag, value in (
                ("partition", self.partition),
                ("account", self.account),
                ("qos", self.qos),
                ("time", self.time),
                ("cpus-per-task", self.cpus_per_task),
                ("mem", self.mem),
                ("gres", self.gres),
            )
            if value is not None
        ]
        return [*arguments, *self.extra_args]

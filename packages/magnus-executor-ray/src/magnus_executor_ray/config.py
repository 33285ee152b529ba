"""What a step's Ray task asks the cluster for, and the named changes a step may pick (``overrides``)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field


class TaskResources(BaseModel):
    """The resources of one Ray task (``ray.remote(...).options(...)``); None leaves Ray's default.

    ``resources`` are the cluster's custom resources (``{"big_node": 1}``, set with
    ``ray start --resources``): a task asking for one runs only on a node that has it.
    """

    model_config = ConfigDict(extra="forbid")

    num_cpus: Optional[float] = Field(default=None, ge=0, description="CPUs a step's task holds (Ray's num_cpus).")
    num_gpus: Optional[float] = Field(default=None, ge=0, description="GPUs a step's task holds (Ray's num_gpus).")
    memory: Optional[int] = Field(default=None, ge=0, description="Memory a step's task reserves, in bytes.")
    resources: Dict[str, float] = Field(
        default_factory=dict, description="Custom resources a step's task needs ({node_b: 1})."
    )

    def merged(self, override: Optional["TaskResources"]) -> "TaskResources":
        """These resources with ``override``'s set fields instead; custom resources extended."""
        if override is None:
            return self
        chosen: Dict[str, Any] = {name: value for name, value in override.model_dump().items() if value is not None}
        chosen["resources"] = {**self.resources, **override.resources}
        return self.model_copy(update=chosen)

    def task_options(self) -> Dict[str, Any]:
        """The options of ``.options(...)`` for a task of these resources (only those set)."""
        options: Dict[str, Any] = {
            name: value
            for name, value in (("num_cpus", self.num_cpus), ("num_gpus", self.num_gpus), ("memory", self.memory))
            if value is not None
        }
        if self.resources:
            options["resources"] = dict(self.resources)
        return options

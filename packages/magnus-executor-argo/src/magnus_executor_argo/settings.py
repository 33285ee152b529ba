"""The parts of the argo executor's configuration that have a shape of their own."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretFromK8s(_Strict):
    """An environment variable of every step, read from a Kubernetes secret (never a value)."""

    environment_variable: str
    secret_name: str
    secret_key: str


class PersistentVolume(_Strict):
    """A persistent volume claim mounted into every step (where run logs and catalogs live)."""

    name: str
    mount_path: str


class Resources(_Strict):
    """Requests and limits of a step's container, as Kubernetes quantities (``cpu: 500m``, ``memory: 2Gi``).

    Only what is configured is written: a step without resources is scheduled as the cluster's
    defaults (a LimitRange) say.
    """

    requests: Dict[str, str] = Field(default_factory=dict)
    limits: Dict[str, str] = Field(default_factory=dict)


class RetryStrategy(_Strict):
    """Argo's relaunches of a step whose pod failed; only steps running user code get them."""

    limit: int = Field(default=0, ge=0)
    retry_policy: Literal["Always", "OnFailure", "OnError", "OnTransientError"] = "Always"


class StepOverride(_Strict):
    """What one step may change (``overrides: {argo: <name>}`` in the pipeline)."""

    image: Optional[str] = None
    image_pull_policy: Optional[str] = None
    resources: Optional[Resources] = None
    max_step_duration_in_seconds: Optional[int] = Field(default=None, gt=0)
    retry_strategy: Optional[RetryStrategy] = None
    node_selector: Optional[Dict[str, str]] = None
    tolerations: Optional[List[Dict[str, Any]]] = None
    environment: Dict[str, str] = Field(default_factory=dict)

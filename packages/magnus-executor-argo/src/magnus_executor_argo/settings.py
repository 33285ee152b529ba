"""The parts of the argo executor's configuration that have a shape of their own."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

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
    requests: Dict[str, str] = Field(default_factory=lambda: {"memory": "1Gi", "cpu": "250m"})
    limits: Dict[str, str] = Field(default_factory=lambda: {"memory": "1Gi", "cpu": "250m"})


class RetryStrategy(_Strict):
    limit: int = 0
    retry_policy: str = "Always"


class StepOverride(_Strict):
    """What one step may change (``overrides: {argo: <name>}`` in the pipeline)."""

    image: Optional[str] = None
    image_pull_policy: Optional[str] = None
    resources: Optional[Resources] = None
    node_selector: Optional[Dict[str, str]] = None
    tolerations: Optional[List[Dict[str, Any]]] = None
    environment: Dict[str, str] = Field(default_factory=dict)

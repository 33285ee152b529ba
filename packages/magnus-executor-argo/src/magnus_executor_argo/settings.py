"""The parts of the argo executor's configuration that have a shape of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from magnus_executor_argo.constants import SERVICE_NAME
from magnus_executor_argo.names import dns_name

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode


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


class ArgoSettings(_Strict):
    """The ``config:`` of the argo executor: what its manifests are built from."""

    image: str = Field(description="Image of every step: your code, the pipeline and config files, and magnus.")
    output_file: str = Field(default="argo-pipeline.yaml", description="Where the manifest is written.")
    expose_parameters_as_inputs: bool = Field(
        default=True,
        description="Initial parameters become workflow arguments (MAGNUS_PRM_ env of steps).",
    )
    secrets_from_k8s: List[SecretFromK8s] = Field(
        default_factory=list, description="Environment variables of every step read from Kubernetes secrets."
    )
    persistent_volumes: List[PersistentVolume] = Field(
        default_factory=list, description="Claims mounted into every step; run logs and catalogs must live on one."
    )
    service_account_name: Optional[str] = Field(default=None, description="Service account of the workflow.")
    max_workflow_duration_in_seconds: Optional[int] = Field(
        default=None, gt=0, description="activeDeadlineSeconds of the workflow (none unless set)."
    )
    max_step_duration_in_seconds: Optional[int] = Field(
        default=None, gt=0, description="activeDeadlineSeconds of each step (none unless set or overridden)."
    )
    node_selector: Dict[str, str] = Field(default_factory=dict, description="Node selector of the workflow.")
    tolerations: List[Dict[str, Any]] = Field(default_factory=list, description="Tolerations of the workflow.")
    resources: Optional[Resources] = Field(
        default=None, description="Requests and limits of every step (none unless set or overridden)."
    )
    retry_strategy: RetryStrategy = Field(
        default_factory=RetryStrategy,
        description="Relaunches of a failed step running user code (limit, retry_policy); none by default.",
    )
    # A schedule renders a CronWorkflow (Argo 3.6 and later) running the pipeline afresh each time.
    schedule: List[str] = Field(
        default_factory=list, description="Cron schedule(s), e.g. '0 3 * * *': render a CronWorkflow."
    )
    timezone: str = Field(default="", description="Time zone of the schedule (e.g. Europe/Berlin).")
    concurrency_policy: Optional[Literal["Allow", "Forbid", "Replace"]] = Field(
        default=None, description="What a scheduled run does when the last one still runs."
    )
    cron_workflow_name: str = Field(default="", description="Name of the CronWorkflow (magnus-<pipeline> by default).")
    parallelism: Optional[int] = Field(default=None, description="Most steps running at once.")
    image_pull_policy: str = Field(default="", description="Always, IfNotPresent or Never.")
    labels: Dict[str, str] = Field(default_factory=dict, description="Labels of the workflow.")
    annotations: Dict[str, str] = Field(default_factory=dict, description="Annotations of the workflow.")
    overrides: Dict[str, StepOverride] = Field(
        default_factory=dict, description="Named changes for single steps, chosen by overrides: {argo: name}."
    )
    # Submission (optional): the token is read from this environment variable, never from config.
    submit: bool = Field(default=False, description="Also submit the workflow to argo_server_url.")
    argo_server_url: str = Field(default="", description="Argo server to submit to.")
    namespace: str = Field(default="argo", description="Namespace to submit to.")
    token_environment_variable: str = Field(
        default="ARGO_TOKEN", description="Environment variable holding the server token (never the config)."
    )
    verify_ssl: bool = Field(default=True, description="Verify the server's TLS certificate.")

    @field_validator("schedule", mode="before")
    @classmethod
    def _one_or_more_schedules(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if value:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{value}' (an IANA name such as Europe/Berlin)") from None
        return value

    @model_validator(mode="after")
    def _schedule_settings_need_a_schedule(self) -> "ArgoSettings":
        if not self.schedule and (self.timezone or self.concurrency_policy or self.cron_workflow_name):
            raise ValueError("timezone, concurrency_policy and cron_workflow_name apply to a schedule: set schedule")
        if self.cron_workflow_name and dns_name(self.cron_workflow_name) != self.cron_workflow_name:
            raise ValueError(
                f"cron_workflow_name '{self.cron_workflow_name}' is not a Kubernetes name: lower case letters, digits "
                "and '-', at most 63 characters, starting with a letter"
            )
        return self

    def override_for(self, node: "BaseNode") -> Optional[StepOverride]:
        """The override block ``node`` picks (``overrides: {argo: name}``), if any."""
        chosen = node.override_name(SERVICE_NAME)
        return self.overrides[chosen] if chosen else None

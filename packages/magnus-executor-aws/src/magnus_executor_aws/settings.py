"""The ``config:`` of the aws-step-functions executor: what its state machines and jobs are built from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from magnus_executor_aws.constants import SERVICE_NAME

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retry(_Strict):
    """Step Functions' relaunches of a step's job that failed (``Retry`` of its Task state).

    Only steps that run user code get them; each relaunch's attempts are numbered after the earlier
    launches' in the run log (``$$.State.RetryCount`` becomes the launch request's ``--retry``).
    """

    max_attempts: int = Field(default=0, ge=0, le=99999999, description="Relaunches after the first (0: none).")
    interval_seconds: int = Field(default=1, ge=1, description="Wait before the first relaunch.")
    backoff_rate: float = Field(default=2.0, ge=1.0, description="Each wait is this many times the last.")


class JobResources(_Strict):
    """What one step may change (``overrides: {aws-step-functions: <name>}`` in the pipeline)."""

    image: Optional[str] = None
    job_queue: Optional[str] = None
    vcpus: Optional[float] = Field(default=None, gt=0)
    memory: Optional[int] = Field(default=None, gt=0, description="MiB")
    timeout: Optional[int] = Field(default=None, ge=60, description="Seconds of one job (Batch's minimum: 60).")
    job_role_arn: Optional[str] = None
    retry: Optional[Retry] = None
    environment: Dict[str, str] = Field(default_factory=dict)


class StepFunctionsSettings(_Strict):
    """The ``config:`` of the aws-step-functions executor."""

    job_queue: str = Field(min_length=1, description="Name or ARN of an existing AWS Batch job queue.")
    image: str = Field(min_length=1, description="Image of every step: your code, the pipeline and config, magnus.")
    region: str = Field(default="", description="AWS region (else the AWS SDK's default chain).")
    state_machine_name: str = Field(default="", description="Name of the state machine (default: magnus-<pipeline>).")
    role_arn: str = Field(default="", description="Role of the state machine (needed to create it).")
    job_role_arn: str = Field(default="", description="IAM role of the jobs (jobRoleArn); none by default.")
    vcpus: float = Field(default=1, gt=0, description="vCPUs of each job.")
    memory: int = Field(default=2048, gt=0, description="Memory of each job, MiB.")
    timeout: int = Field(default=3600, ge=60, description="Seconds one job may run (Batch's attemptDurationSeconds).")
    max_concurrency: int = Field(default=0, ge=0, description="Most items of a map at once (0: no limit).")
    environment: Dict[str, str] = Field(
        default_factory=dict, description="Extra environment of every job, as given (never secrets)."
    )
    retry: Retry = Field(default_factory=Retry, description="Relaunches of a failed job running user code.")
    iterations_location: str = Field(
        default="",
        description="s3:// folder the jobs write a map's items (a conditional's choice) to and the state "
        "machine reads them from (needed when the pipeline has a map or a conditional).",
    )
    wait: bool = Field(default=True, description="Follow the execution until it ends, as a local run shows it.")
    poll_seconds: float = Field(default=2.0, gt=0, description="How often the run is read while following it.")
    output_file: str = Field(default="", description="Write the state machine's definition here; submit nothing.")
    overrides: Dict[str, JobResources] = Field(
        default_factory=dict,
        description="Named changes for single steps, chosen by overrides: {aws-step-functions: name}.",
    )

    @field_validator("iterations_location")
    @classmethod
    def _an_s3_folder(cls, value: str) -> str:
        if value and not value.startswith("s3://"):
            raise ValueError(f"'{value}' is not an s3:// folder: Step Functions reads a map's items from S3")
        return value.rstrip("/")

    def override_for(self, node: "BaseNode") -> Optional[JobResources]:
        """The override block ``node`` picks (``overrides: {aws-step-functions: name}``), if any."""
        chosen = node.override_name(SERVICE_NAME)
        return self.overrides[chosen] if chosen else None

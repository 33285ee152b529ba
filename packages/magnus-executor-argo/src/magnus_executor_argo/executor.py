"""``executor: {type: argo, config: {...}}``: render the pipeline as an Argo Workflow manifest.

``magnus execute -f pipeline.yaml -c argo.yaml`` renders the pipeline's execution plan as a
manifest (``output_file``) and runs no user code; with ``submit: true`` it also sends it to an Argo
server. Inside the workflow's pods the same configuration runs each step (``magnus
execute_single_node``) and fans composite steps out and in (``magnus fan``), against a run log
store and catalog every pod reaches (a database, an object store, or a persistent volume).

The pods import this module to load the executor named in the configuration, so it imports no
hera: the manifest is built (:mod:`magnus_executor_argo.manifest`) only where it is rendered.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Literal, Optional, Sequence

from pydantic import Field, field_validator, model_validator

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import PlanRenderer
from magnus.reach import Reach
from magnus_executor_argo.names import dns_name
from magnus_executor_argo.paths import path_in_image
from magnus_executor_argo.settings import PersistentVolume, Resources, RetryStrategy, SecretFromK8s, StepOverride

if TYPE_CHECKING:
    from magnus.runtime.plan import Plan
    from magnus.runtime.services import RunServices


class ArgoExecutor(PlanRenderer):
    """Renders a pipeline's plan as an Argo Workflow; its units run in pods with the same config."""

    service_name: ClassVar[str] = "argo"
    engine_names_runs: ClassVar[bool] = True  # each run is named {{workflow.uid}}

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
    def _schedule_settings_need_a_schedule(self) -> "ArgoExecutor":
        if not self.schedule and (self.timezone or self.concurrency_policy or self.cron_workflow_name):
            raise ValueError("timezone, concurrency_policy and cron_workflow_name apply to a schedule: set schedule")
        if self.cron_workflow_name and dns_name(self.cron_workflow_name) != self.cron_workflow_name:
            raise ValueError(
                f"cron_workflow_name '{self.cron_workflow_name}' is not a Kubernetes name: lower case letters, digits "
                "and '-', at most 63 characters, starting with a letter"
            )
        return self

    # ---- before anything is rendered -----------------------------------------------------------------
    def needed_reach(self) -> Reach:
        return Reach.ANYWHERE

    def where_steps_run(self) -> str:
        return "in pods, out of this machine's reach"

    def folders_problem(self, folders: Sequence[str]) -> str:
        """A folder the pods see must be on a persistent volume they all mount."""
        mounts = [PurePosixPath(volume.mount_path) for volume in self.persistent_volumes]
        for folder in folders:
            if not any(PurePosixPath(folder).is_relative_to(mount) for mount in mounts):
                return (
                    f"folder '{folder}' is not on a persistent volume, so the pods of the workflow cannot share it; "
                    f"mount one (executor.config.persistent_volumes, mounted at: "
                    f"{', '.join(map(str, mounts)) or 'none'}) and put the folder inside it, or use a store shared "
                    "between hosts (run_log_store: db; catalog: fsspec on an object store)"
                )
        return ""

    def check(self, services: "RunServices") -> None:
        """Refuse, before rendering, what cannot work on a cluster.

        The pods read the pipeline, configuration and parameters files from the image, so they
        must be inside the project folder. Overrides must name a block of this config; a resumed
        run's log must be readable (the run it resumes is in the store). (Every service must be
        reachable from every pod: checked by core, with :meth:`folders_problem` for folders.)
        """
        options = services.options
        path_in_image(self.step_configuration_file(services), "-c")
        if options.pipeline_file.endswith((".yaml", ".yml")):
            path_in_image(options.pipeline_file, "-f")
        else:  # a pipeline built with the SDK is written beside the manifest for the pods
            path_in_image(self.output_file, "executor.config.output_file")
        if not self.expose_parameters_as_inputs:
            path_in_image(options.parameters_file, "-p")
        self.check_override_names(services.pipeline.graph, self.overrides)
        if services.original_run_id:
            if self.schedule:
                raise ConfigurationError(
                    "--use-cached resumes one run, but executor.config.schedule starts a new run each time"
                )
            services.original_run_log  # noqa: B018 - read now: an unreadable run to resume is refused here

    # ---- the manifest ------------------------------------------------------------------------------------
    def render(self, plan: "Plan", services: "RunServices") -> str:
        """Write the manifest of ``plan`` (and submit it when configured); no unit runs here: ``TRIGGERED``."""
        from magnus.atomic import write_atomically
        from magnus_executor_argo.manifest import ManifestBuilder, to_yaml

        output = Path(self.output_file)
        pipeline_file = self.reference(services, output.with_name(output.stem + "-dag.yaml")).pipeline_file
        workflow = ManifestBuilder(self, plan, services, pipeline_file).build()
        write_atomically(output, to_yaml(workflow).encode(), durable=False)
        print(f"Argo {workflow.kind} manifest written to {self.output_file}")
        if self.submit:
            from magnus_executor_argo.submit import submit_workflow

            name = submit_workflow(self, workflow)
            print(f"Submitted to {self.argo_server_url} as {name}")
        return defaults.TRIGGERED

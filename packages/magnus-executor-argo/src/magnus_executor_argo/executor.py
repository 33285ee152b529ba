"""``executor: {type: argo, config: {...}}``: render the pipeline as an Argo Workflow manifest.

``magnus execute -f pipeline.yaml -c argo.yaml`` writes the manifest (``output_file``) and runs no
user code; with ``submit: true`` it also sends it to an Argo server. Inside the workflow's pods the
same configuration runs each step (``magnus execute_single_node``) and fans composite steps out
and in (``magnus fan``), against a run log store and catalog on a persistent volume.

The pods import this module to load the executor named in the configuration, so it imports no
hera: the manifest is built (:mod:`magnus_executor_argo.manifest`) only where it is rendered.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional

from pydantic import Field

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import BaseExecutor
from magnus_executor_argo.settings import PersistentVolume, Resources, RetryStrategy, SecretFromK8s, StepOverride

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices


class ArgoExecutor(BaseExecutor):
    """Turns a pipeline into an Argo Workflow; its steps run in pods with the same config."""

    service_name: ClassVar[str] = "argo"
    runs_steps_elsewhere: ClassVar[bool] = True

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
    max_workflow_duration_in_seconds: int = Field(default=86400, description="activeDeadlineSeconds of the workflow.")
    max_step_duration_in_seconds: int = Field(default=7200, description="activeDeadlineSeconds of each step.")
    node_selector: Dict[str, str] = Field(default_factory=dict, description="Node selector of the workflow.")
    tolerations: List[Dict[str, Any]] = Field(default_factory=list, description="Tolerations of the workflow.")
    resources: Resources = Field(default_factory=Resources, description="Requests and limits of every step.")
    retry_strategy: RetryStrategy = Field(
        default_factory=RetryStrategy, description="Retries of a failed step (limit, retry_policy)."
    )
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

    def check(self, services: "RunServices") -> None:
        """Refuse, before rendering, what cannot work on a cluster.

        The pods read the configuration file; every folder a service keeps its state in must be
        on a persistent volume all pods mount; overrides must name a block of this config.
        """
        self.step_configuration_file(services)
        mounts = [PurePosixPath(volume.mount_path) for volume in self.persistent_volumes]
        for service in services.services().values():
            for folder in service.local_paths():
                if not any(PurePosixPath(folder).is_relative_to(mount) for mount in mounts):
                    raise ConfigurationError(
                        f"{service.service_type} '{service.service_name}': folder '{folder}' is not on a persistent "
                        "volume, so the pods of the workflow cannot share it; mount one (executor.config."
                        f"persistent_volumes, mounted at: {', '.join(map(str, mounts)) or 'none'}) and put the "
                        "folder inside it"
                    )
        assert services.pipeline is not None, "a run renders a pipeline"
        self.check_override_names(services.pipeline.graph, self.overrides)

    def execute_pipeline(self, services: "RunServices") -> str:
        """Write the manifest (and submit it when configured); no step runs here: ``TRIGGERED``."""
        from magnus.atomic import write_atomically
        from magnus_executor_argo.manifest import ManifestBuilder, to_yaml

        output = Path(self.output_file)
        pipeline_file = self.step_pipeline_file(services, output.with_name(output.stem + "-dag.yaml"))
        workflow = ManifestBuilder(self, services, pipeline_file).build()
        write_atomically(output, to_yaml(workflow).encode(), durable=False)
        print(f"Argo workflow manifest written to {self.output_file}")
        if self.submit:
            from magnus_executor_argo.submit import submit_workflow

            name = submit_workflow(self, workflow)
            print(f"Submitted to {self.argo_server_url} as {name}")
        return defaults.TRIGGERED

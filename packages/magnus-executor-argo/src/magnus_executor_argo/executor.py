"""``executor: {type: argo, config: {...}}``: render the pipeline as an Argo Workflow manifest.

``magnus execute -f pipeline.yaml -c argo.yaml`` writes the manifest (``output_file``) and runs no
user code; with ``submit: true`` it also sends it to an Argo server. Inside the workflow's pods the
same configuration runs each step (``magnus execute_single_node``) and fans composite steps out
and in (``magnus fan``), against a run log store and catalog on a persistent volume.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional

from pydantic import Field

from magnus import defaults, integration
from magnus.atomic import write_atomically
from magnus.errors import ConfigurationError
from magnus.executor.base import BaseExecutor
from magnus.graph import Graph
from magnus.nodes.base import BaseNode
from magnus.parameters import initial_parameters
from magnus_executor_argo.settings import PersistentVolume, Resources, RetryStrategy, SecretFromK8s, StepOverride

logger = logging.getLogger(defaults.LOGGER_NAME)

# Read by the fan-out of a map; tests running the manifest outside Kubernetes point it elsewhere.
ITERATIONS_PATH_VARIABLE = "MAGNUS_ARGO_ITERATIONS_PATH"


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

    # ---- where the graph is walked: render (and submit) ------------------------------------------
    def execute_pipeline(self, dag: Graph) -> str:
        """Write the manifest (and submit it when configured); no step runs here."""
        from magnus_executor_argo.manifest import ManifestBuilder, to_yaml

        ctx = self._context
        output = Path(self.output_file)
        self.check(dag)
        workflow = ManifestBuilder(
            self,
            dag,
            pipeline_file=self.step_pipeline_file(output.with_name(output.stem + "-dag.yaml")),
            configuration_file=self.step_configuration_file(),
            parameters=initial_parameters(ctx.parameters_file),
            parameters_file=ctx.parameters_file,
        ).build()
        write_atomically(output, to_yaml(workflow).encode(), durable=False)
        print(f"Argo workflow manifest written to {self.output_file}")
        if self.submit:
            from magnus_executor_argo.submit import submit_workflow

            name = submit_workflow(self, workflow)
            print(f"Submitted to {self.argo_server_url} as {name}")
        return defaults.TRIGGERED

    def check(self, dag: Graph) -> None:
        """Refuse, before rendering, what cannot work on a cluster."""
        self.step_configuration_file()
        for service in self.services():
            integration.validate(self, service)
            self._check_on_volume(service)
        self.check_override_names(dag, self.overrides)

    def _check_on_volume(self, service: Any) -> None:
        """Folders of run logs and catalogs must be on a persistent volume every pod mounts."""
        for field in ("log_folder", "catalog_location"):
            folder = getattr(service, field, None)
            if folder is None:
                continue
            mounts = [volume.mount_path.rstrip("/") for volume in self.persistent_volumes]
            absolute = str(folder).rstrip("/")
            if not any(absolute == mount or absolute.startswith(mount + "/") for mount in mounts):
                raise ConfigurationError(
                    f"{service.service_type}.config.{field}: '{folder}' is not on a persistent volume, so the pods "
                    f"of the workflow cannot share it; mount one (executor.config.persistent_volumes, mounted at: "
                    f"{', '.join(mounts) or 'none'}) and put the folder inside it"
                )

    # ---- inside the pods -----------------------------------------------------------------------------
    def fan_out(self, node: BaseNode, map_variable: defaults.TypeMapVariable = None) -> None:
        """Record the branches; for a map also write the iterations for the workflow's ``withParam``."""
        super().fan_out(node, map_variable)
        if node.node_type != "map":
            return
        values = node.iteration_values(self._context)  # type: ignore[attr-defined]
        iterate_as = node.iterate_as  # type: ignore[attr-defined]
        iterations = [json.dumps({**(map_variable or {}), iterate_as: value}) for value in values]
        from magnus_executor_argo.manifest import ITERATIONS_PATH

        path = os.environ.get(ITERATIONS_PATH_VARIABLE, ITERATIONS_PATH)
        Path(path).write_text(json.dumps(iterations))

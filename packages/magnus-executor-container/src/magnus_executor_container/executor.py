"""``executor: {type: local-container, config: {docker_image: ..., ...}}``.

The graph is walked on this machine; every task (and stub, success and fail node) runs in a
container of ``docker_image`` as ``magnus execute_single_node RUN_ID PIPELINE STEP -c CONFIG``, with
the project folder mounted at the same path and used as the working directory, so the pipeline,
the code, the configuration and the run log store and catalog folders are the same on both sides.
The container's output is shown here and its exit status decides nothing on its own: the step's
status is read back from the run log the container wrote.

Talks to any engine serving the Docker API (``DOCKER_HOST``): Docker, or podman's service.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.local import LocalExecutor
from magnus.nodes.base import BaseNode

# Exit status of a shell that could not find the command: the image lacks magnus.
_COMMAND_NOT_FOUND = (126, 127)


class ContainerOverride(BaseModel):
    """What one step may change (``overrides: {local-container: <name>}`` in the pipeline)."""

    model_config = ConfigDict(extra="forbid")

    docker_image: Optional[str] = None
    environment: Dict[str, str] = Field(default_factory=dict)


class LocalContainerExecutor(LocalExecutor):
    """Runs each step in a container on this machine; branches concurrently with ``enable_parallel``."""

    service_name: ClassVar[str] = "local-container"
    runs_steps_elsewhere: ClassVar[bool] = True

    docker_image: str = Field(description="Image every step runs in: your code's dependencies and magnus.")
    environment: Dict[str, str] = Field(default_factory=dict, description="Environment of every step's container.")
    auto_remove_container: bool = Field(default=True, description="Remove each container once its step ended.")
    network_mode: Optional[str] = Field(default=None, description="Docker network mode of the containers (none, host).")
    overrides: Dict[str, ContainerOverride] = Field(
        default_factory=dict,
        description="Named changes for single steps, chosen by overrides: {local-container: name}.",
    )

    _client: Any = PrivateAttr(default=None)
    _pipeline: str = PrivateAttr(default="")
    _client_pid: int = PrivateAttr(default=0)

    # ---- checks before anything runs ---------------------------------------------------------------
    def prepare_for_graph_execution(self) -> None:
        ctx = self._context
        if ctx.dag is not None:
            self.check_override_names(ctx.dag, self.overrides)
        self.step_configuration_file()
        # The containers read the pipeline from the mounted project folder.
        self._pipeline = self.step_pipeline_file(Path(".magnus") / f"{ctx.run_id}-pipeline.yaml")
        self._check_image(self.docker_image)
        for override in self.overrides.values():
            if override.docker_image:
                self._check_image(override.docker_image)
        super().prepare_for_graph_execution()

    def client(self) -> Any:
        """A Docker API client for this process (workers forked for branches make their own)."""
        if self._client is None or self._client_pid != os.getpid():
            import docker

            host = os.environ.get("DOCKER_HOST", "the default socket")
            try:
                self._client = docker.from_env()
                self._client.ping()
            except Exception as exc:
                raise ConfigurationError(
                    f"executor local-container: cannot reach a container engine at DOCKER_HOST={host}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from exc
            self._client_pid = os.getpid()
        return self._client

    def _check_image(self, image: str) -> None:
        import docker.errors

        try:
            self.client().images.get(image)
        except docker.errors.ImageNotFound:
            raise ConfigurationError(
                f"executor local-container: image '{image}' does not exist on the engine: build or pull it first"
            ) from None

    # ---- running a step in a container ---------------------------------------------------------------
    def trigger_job(self, node: BaseNode, map_variable: defaults.TypeMapVariable = None) -> None:
        """Run ``node`` in a container and wait for it; its step log is written from inside."""
        ctx = self._context
        override = self._override(node)
        image = (override.docker_image if override and override.docker_image else None) or self.docker_image
        command = self.step_command(node, map_variable)
        environment = {
            **self.environment,
            **(override.environment if override else {}),
            defaults.ENV_RUN_ID: ctx.run_id,
        }
        import docker.errors

        try:
            container = self.client().containers.run(
                image,
                command,
                detach=True,
                working_dir=os.getcwd(),
                volumes=self._volumes(),
                environment=environment,
                network_mode=self.network_mode,
            )
        except docker.errors.APIError as exc:
            explanation = str(getattr(exc, "explanation", "") or exc)
            if "executable file not found" in explanation or "not found in $PATH" in explanation:
                raise ConfigurationError(
                    f"executor local-container: image '{image}' cannot run `magnus` (not on its PATH): "
                    "install magnus-core and the plugins of the configuration in the image"
                ) from exc
            raise ConfigurationError(
                f"executor local-container: the engine refused to start '{image}': {explanation}"
            ) from exc
        try:
            status = container.wait()["StatusCode"]
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            if self.auto_remove_container:
                container.remove(force=True)
        sys.stdout.write(ctx.redactor.redact(output))
        if status in _COMMAND_NOT_FOUND:
            raise ConfigurationError(
                f"executor local-container: image '{image}' cannot run `magnus` (exit {status}): "
                "install magnus-core and the plugins of the configuration in the image"
            )

    def step_command(self, node: BaseNode, map_variable: defaults.TypeMapVariable) -> List[str]:
        ctx = self._context
        step = node.internal_name.replace(" ", defaults.COMMAND_FRIENDLY_CHARACTER)
        pipeline = self._pipeline or ctx.pipeline_file
        command = ["magnus", "execute_single_node", ctx.run_id, pipeline, step, "-c", self.step_configuration_file()]
        if ctx.parameters_file:
            command += ["-p", ctx.parameters_file]
        if map_variable:
            command += ["--map-variable", json.dumps(map_variable)]
        if ctx.tag:
            command += ["--tag", ctx.tag]
        return command

    def _override(self, node: BaseNode) -> Optional[ContainerOverride]:
        chosen = self.override_name(node)
        return self.overrides[chosen] if chosen else None

    def _volumes(self) -> Dict[str, Dict[str, str]]:
        """The project folder, and any store or catalog folder outside it, at the same paths."""
        here = Path.cwd().resolve()
        folders = {here}
        for service in self.services():
            for field in ("log_folder", "catalog_location"):
                folder = getattr(service, field, None)
                if folder:
                    path = (here / folder).resolve()
                    path.mkdir(parents=True, exist_ok=True)
                    if not path.is_relative_to(here):
                        folders.add(path)
        return {str(folder): {"bind": str(folder), "mode": "rw"} for folder in sorted(folders)}

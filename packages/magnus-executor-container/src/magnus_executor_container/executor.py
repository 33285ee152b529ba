"""``executor: {type: local-container, config: {docker_image: ..., ...}}``.

The graph is walked on this machine; every executable step runs in a container of
``docker_image``, started from its :class:`~magnus.runtime.request.StepRequest` (``magnus
execute_single_node ...``), with the project folder mounted at the same path and used as the
working directory, and every folder a service keeps its state in (``local_paths()``) mounted at
its own path, so the pipeline, the code, the configuration, the run log and the catalog are the
same on both sides. The container's output is shown here and its exit status decides nothing on
its own: the step's status is read back from the run log the container wrote.

Talks to any engine serving the Docker API (``DOCKER_HOST``): Docker, or podman's service.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.local import LocalExecutor

if TYPE_CHECKING:
    from magnus.datastore.models import StepLog
    from magnus.nodes.base import BaseNode, ExecutableNode
    from magnus.runtime.services import RunServices

# Exit status of a shell that could not find the command: the image lacks magnus.
_COMMAND_NOT_FOUND = (126, 127)
_NO_MAGNUS = "install magnus-core and the plugins of the configuration in the image"


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
    _client_pid: int = PrivateAttr(default=0)
    _pipeline_file: str = PrivateAttr(default="")  # what the containers read, settled by check()

    # ---- before anything runs ------------------------------------------------------------------------
    def check(self, services: "RunServices") -> None:
        """Refuse unknown overrides, a missing configuration file and missing images; write an SDK pipeline.

        The containers read the pipeline from the mounted project folder: a pipeline built with
        the SDK is written to ``.magnus/<run_id>-pipeline.yaml`` for them.
        """
        assert services.pipeline is not None, "a run walks a pipeline"
        self.check_override_names(services.pipeline.graph, self.overrides)
        self.step_configuration_file(services)
        written_to = Path(".magnus") / f"{services.run_id}-pipeline.yaml"
        self._pipeline_file = self.step_pipeline_file(services, written_to)
        overridden = [override.docker_image for override in self.overrides.values() if override.docker_image]
        for image in dict.fromkeys([self.docker_image, *overridden]):
            self._check_image(image)
        super().check(services)

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

    # ---- one step in a container ------------------------------------------------------------------
    def run_step(
        self,
        services: "RunServices",
        node: "ExecutableNode",
        map_variable: defaults.TypeMapVariable,
        step_log: "StepLog",
    ) -> Optional["StepLog"]:
        """Run ``node`` in a container and wait for it; the container writes the step log (None)."""
        override = self._override(node)
        image = (override.docker_image if override else None) or self.docker_image
        request = self.step_request(services, node, map_variable, pipeline_file=self._pipeline_file)
        environment = {
            **self.environment,
            **(override.environment if override else {}),
            defaults.ENV_RUN_ID: services.run_id,
        }
        import docker.errors

        try:
            container = self.client().containers.run(
                image,
                request.to_argv(),
                detach=True,
                working_dir=os.getcwd(),
                volumes=self._volumes(services),
                environment=environment,
                network_mode=self.network_mode,
            )
        except docker.errors.APIError as exc:
            explanation = str(exc.explanation or exc)
            if "executable file not found" in explanation or "not found in $PATH" in explanation:
                raise ConfigurationError(
                    f"executor local-container: image '{image}' cannot run `magnus` (not on its PATH): {_NO_MAGNUS}"
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
        sys.stdout.write(services.redactor.redact(output))
        if status in _COMMAND_NOT_FOUND:
            raise ConfigurationError(
                f"executor local-container: image '{image}' cannot run `magnus` (exit {status}): {_NO_MAGNUS}"
            )
        return None

    def _override(self, node: "BaseNode") -> Optional[ContainerOverride]:
        chosen = node.override_name(self.service_name)
        return self.overrides[chosen] if chosen else None

    def _volumes(self, services: "RunServices") -> Dict[str, Dict[str, str]]:
        """The project folder, and every service folder outside it, mounted at the same paths."""
        here = Path.cwd().resolve()
        folders = {here}
        for service in services.services().values():
            for folder in service.local_paths():
                path = (here / folder).resolve()
                path.mkdir(parents=True, exist_ok=True)  # a bind mount needs the folder
                if not path.is_relative_to(here):
                    folders.add(path)
        return {str(folder): {"bind": str(folder), "mode": "rw"} for folder in sorted(folders)}

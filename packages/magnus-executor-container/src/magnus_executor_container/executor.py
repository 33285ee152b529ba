"""``executor: {type: local-container, config: {docker_image: ..., ...}}``.

The run is walked on this machine; every step runs in a container of ``docker_image``, started
from its launch request (``magnus execute_single_node ...``), with the project folder mounted at
the same path and used as the working directory, and every folder a service keeps its state in
(``local_paths()``) mounted at its own path, so the pipeline, the code, the configuration, the run
log and the catalog are the same on both sides. With ``enable_parallel`` (or ``max_workers``) the
steps of parallel branches and map items run in containers side by side. The containers of a run
carry its id as a label: one listing per poll finds those that ended, whose output is shown here;
a container's exit status decides nothing on its own: the step's status is read back from the run
log the container wrote (a container that died first fails its step with its exit status).

Talks to any engine serving the Docker API (``DOCKER_HOST``): Docker, or podman's service.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import StepHandlerExecutor
from magnus.executor.local import LocalExecutor
from magnus.runtime.handler import Ended, Handle

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices
    from magnus.runtime.units import Unit

# Exit status of a shell that could not find the command: the image lacks magnus.
_COMMAND_NOT_FOUND = (126, 127)
_NO_MAGNUS = "install magnus-core and the plugins of the configuration in the image"
# The label naming the run a container belongs to.
RUN_LABEL = "io.magnus.run"
# Polls look again quickly at first (a short step ends in a second), then less often.
_FIRST_LOOK, _LONGEST_LOOK = 0.05, 0.5


class ContainerOverride(BaseModel):
    """What one step may change (``overrides: {local-container: <name>}`` in the pipeline)."""

    model_config = ConfigDict(extra="forbid")

    docker_image: Optional[str] = None
    environment: Dict[str, str] = Field(default_factory=dict)


class LocalContainerExecutor(LocalExecutor):
    """Runs each step in a container on this machine; branches side by side with ``enable_parallel``."""

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
    _running: Dict[str, Any] = PrivateAttr(default_factory=dict)  # containers in flight, by id
    _services: Optional["RunServices"] = PrivateAttr(default=None)

    # ---- before anything runs ------------------------------------------------------------------------
    def check(self, services: "RunServices") -> None:
        """Refuse unknown overrides and missing images."""
        self.check_override_names(services.pipeline.graph, self.overrides)
        overridden = [override.docker_image for override in self.overrides.values() if override.docker_image]
        for image in dict.fromkeys([self.docker_image, *overridden]):
            self._check_image(image)

    def client(self) -> Any:
        """A Docker API client, made on first use."""
        if self._client is None:
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
        return self._client

    def _check_image(self, image: str) -> None:
        import docker.errors

        try:
            self.client().images.get(image)
        except docker.errors.ImageNotFound:
            raise ConfigurationError(
                f"executor local-container: image '{image}' does not exist on the engine: build or pull it first"
            ) from None

    # ---- steps in containers ------------------------------------------------------------------------
    def execute_pipeline(self, services: "RunServices") -> str:
        self._services = services
        return StepHandlerExecutor.execute_pipeline(self, services)

    def launch(self, unit: "Unit") -> Handle:
        """Start the step's container (detached); its id is the handle."""
        override = self.override_of(unit.node, self.overrides)
        image = (override.docker_image if override else None) or self.docker_image
        services = unit.run.services
        request = unit.request()
        environment = {
            **request.environment_variables(),  # the tracker's (a trace context)
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
                labels={RUN_LABEL: services.run_id},
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
        self._running[container.id] = container
        return str(container.id)

    def poll(self, handles: Sequence[Handle], timeout: float) -> Dict[Handle, Ended]:
        """The containers of ``handles`` that exited: one listing of the run's exited containers per look."""
        assert self._services is not None, "containers are polled within execute_pipeline"
        label = f"{RUN_LABEL}={self._services.run_id}"
        deadline, look = time.monotonic() + timeout, _FIRST_LOOK
        while True:
            exited = self.client().containers.list(all=True, filters={"label": label, "status": "exited"})
            ended = {container.id: self._ended(container.id) for container in exited if container.id in handles}
            if ended or time.monotonic() >= deadline:
                return ended
            time.sleep(min(look, max(0.0, deadline - time.monotonic())))
            look = min(look * 2, _LONGEST_LOOK)

    def cancel(self, handles: Sequence[Handle]) -> None:
        """Stop the containers (SIGTERM, then SIGKILL after 10 s): their steps record the interrupt."""
        for handle in handles:
            container = self._running.pop(str(handle), None)
            if container is not None:
                container.stop(timeout=10)
                self._finish(container)

    def _ended(self, container_id: str) -> Ended:
        """Show what the container printed, remove it; how it ended."""
        container = self._running.pop(container_id)
        status = container.wait()["StatusCode"]
        self._finish(container)
        if status in _COMMAND_NOT_FOUND:
            image = container.image.tags[0] if container.image.tags else container.image.id
            raise ConfigurationError(
                f"executor local-container: image '{image}' cannot run `magnus` (exit {status}): {_NO_MAGNUS}"
            )
        return Ended(reason=f"its container exited with code {status}")

    def _finish(self, container: Any) -> None:
        try:
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            if self.auto_remove_container:
                container.remove(force=True)
        assert self._services is not None
        sys.stdout.write(self._services.redactor.redact(output))

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

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
from typing import TYPE_CHECKING, ClassVar, Sequence

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import PlanRenderer
from magnus.reach import Reach
from magnus_executor_argo.constants import SERVICE_NAME
from magnus_executor_argo.paths import path_in_image
from magnus_executor_argo.settings import ArgoSettings

if TYPE_CHECKING:
    from magnus.runtime.plan import Plan
    from magnus.runtime.services import RunServices


class ArgoExecutor(PlanRenderer, ArgoSettings):
    """Renders a pipeline's plan as an Argo Workflow; its units run in pods with the same config.

    Its configuration is :class:`~magnus_executor_argo.settings.ArgoSettings` (what the manifest
    is built from); this class adds what an executor does with it.
    """

    service_name: ClassVar[str] = SERVICE_NAME
    engine_names_runs: ClassVar[bool] = True  # each run is named {{workflow.uid}}

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

        Argo fills ``{{...}}`` in what a pod is given: step names, the tag, the run resumed and the
        files' paths holding a tag's marks are refused, and so are parameter names that cannot be
        workflow parameters (:mod:`~magnus_executor_argo.template_tags`).

        The pods read the pipeline, configuration and parameters files from the image, so they
        must be inside the project folder. Overrides must name a block of this config; a resumed
        run's log must be readable (the run it resumes is in the store). (Every service must be
        reachable from every pod: checked by core, with :meth:`folders_problem` for folders.)
        """
        from magnus_executor_argo import template_tags  # at render only: pods need not import it

        options = services.options
        template_tags.check_words((("--tag", options.tag), ("--use-cached", services.original_run_id)))
        template_tags.check_step_names(services.pipeline.graph, options.pipeline_file or "pipeline")
        if self.expose_parameters_as_inputs:
            template_tags.check_parameter_names(services.initial_parameters)
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
        """Write the manifest of ``plan`` (and submit it when configured); no unit runs here: ``TRIGGERED``.

        Where it went is told to ``services.events`` (``handed_off``), never printed here.
        """
        from magnus.atomic import write_atomically
        from magnus_executor_argo.manifest import ManifestBuilder, to_yaml

        output = Path(self.output_file)
        pipeline_file = self.reference(services, output.with_name(output.stem + "-dag.yaml")).pipeline_file
        configuration_file = self.step_configuration_file(services)
        workflow = ManifestBuilder(self, plan, services, pipeline_file, configuration_file).build()
        write_atomically(output, to_yaml(workflow).encode(), durable=False)
        # Told to whoever watches the run (the command line's progress; nobody with -q).
        services.events.handed_off(f"Argo {workflow.kind} manifest written to {self.output_file}")
        if self.submit:
            from magnus_executor_argo.submit import submit_workflow

            name = submit_workflow(self, workflow)
            services.events.handed_off(f"Submitted to {self.argo_server_url} as {name}")
        return defaults.TRIGGERED

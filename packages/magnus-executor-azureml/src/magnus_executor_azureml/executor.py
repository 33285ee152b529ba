"""``executor: {type: azureml, config: {...}}``: render the pipeline as an Azure ML pipeline job.

``magnus execute -f pipeline.yaml -c azureml.yaml`` renders the pipeline's execution plan as a
pipeline job (`magnus_executor_azureml.job`) and runs no user code: with ``output_file`` it
writes the job's YAML, else it submits the job to the configured workspace and says where to see
it. On the compute the same configuration runs each node's unit (``magnus execute_single_node``,
``magnus fan``, ``magnus execute_branch``), against a run log store and catalog every node reaches
(a database, an object store: ``fsspec`` on ``az://`` or ``s3://``).

The compute's processes import this module to load the executor named in the configuration, so it
imports no azure: the job is built and submitted only where it is rendered.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

from magnus import defaults
from magnus.errors import ConfigurationError
from magnus.executor.base import PlanRenderer
from magnus.reach import Reach
from magnus_executor_azureml.constants import SERVICE_NAME
from magnus_executor_azureml.settings import AzureMLSettings

if TYPE_CHECKING:
    from magnus.runtime.plan import Plan
    from magnus.runtime.services import RunOptions, RunServices


class AzureMLExecutor(PlanRenderer, AzureMLSettings):
    """Renders a pipeline's plan as an Azure ML pipeline job; its nodes run units with the same config.

    Its configuration is `magnus_executor_azureml.settings.AzureMLSettings`; this
    class adds what an executor does with it.
    """

    service_name: ClassVar[str] = SERVICE_NAME

    # ---- before anything is rendered -----------------------------------------------------------------
    def needed_reach(self) -> Reach:
        return Reach.ANYWHERE

    def where_steps_run(self) -> str:
        return "on Azure ML compute, out of this machine's reach"

    def folders_problem(self, folders: Sequence[str]) -> str:
        """No folder of this machine is seen by the compute's nodes (each gets its own copy of the code)."""
        return (
            f"folder '{folders[0]}' is on this machine, which the Azure ML compute does not see; use a store shared "
            "between hosts (run_log_store: db on a server; catalog: fsspec on az:// or s3://)"
        )

    def check(self, services: "RunServices") -> None:
        """Refuse, before rendering, what Azure ML cannot run: one line each (the first found).

        The nodes read the pipeline, configuration and parameters files from the code folder Azure
        ML uploads, so they must be inside it; overrides must name a block of this config; routes
        Azure ML cannot take (a top-level ``on_failure`` to a step, a loop longer than ``do_while`` runs)
        and overrides of steps walked inside a branch's node are refused
        (`magnus_executor_azureml.job.problems`). (Every service must reach the compute:
        checked by core, with `folders_problem` for folders.)

        Raises:
            ConfigurationError: the configuration cannot run this pipeline on Azure ML.
            UserInputError: a file is outside the code folder.
        """
        from magnus_executor_azureml.job import in_code, problems

        options = services.options
        in_code(self.step_configuration_file(services), self.code, "-c")
        if options.pipeline_file.endswith((".yaml", ".yml")):
            in_code(options.pipeline_file, self.code, "-f")
        in_code(options.parameters_file, self.code, "-p")
        self.check_override_names(services.pipeline.graph, self.overrides)
        found = problems(services.pipeline.plan)
        if found:
            raise ConfigurationError(found[0])
        if services.original_run_id:
            services.original_run_log  # noqa: B018 - read now: an unreadable run to resume is refused here

    # ---- the job -------------------------------------------------------------------------------------
    def render(self, plan: "Plan", services: "RunServices") -> str:
        """Write the job's YAML (``output_file``), or submit it; no unit runs here: ``TRIGGERED``.

        Where it went is told to ``services.events`` (``handed_off``), never printed here.
        """
        from magnus.atomic import write_atomically
        from magnus_executor_azureml.job import JobBuilder, relative_code, to_yaml

        written_to = Path(self.output_file or Path(".magnus") / f"{services.run_id}-azureml-job.yaml")
        reference = self._reference(services, written_to)
        display_name = self.display_name or Path(services.options.pipeline_file).stem or "magnus"
        job = JobBuilder(self, plan, reference, relative_code(self.code, str(written_to)), display_name).build()
        write_atomically(written_to, to_yaml(job).encode(), durable=False)
        if not self.submits:
            services.events.handed_off(f"Azure ML pipeline job written to {written_to}")
            return defaults.TRIGGERED
        from magnus_executor_azureml.submit import submit_job

        url = submit_job(self, str(written_to))
        services.events.handed_off(f"Submitted to Azure ML workspace {self.workspace_name}: {url}")
        return defaults.TRIGGERED

    def _reference(self, services: "RunServices", written_to: Path) -> "RunOptions":
        """What every node's request carries: the run, and its files relative to the code folder."""
        from magnus_executor_azureml.job import in_code

        options = self.reference(services, written_to.with_name(written_to.stem + "-dag.yaml"))
        if not options.configuration_file:
            raise ConfigurationError("executor azureml: the nodes need the configuration file: pass it with -c")
        return dataclasses.replace(
            options,
            pipeline_file=in_code(options.pipeline_file, self.code, "-f"),
            configuration_file=in_code(options.configuration_file, self.code, "-c"),
            parameters_file=in_code(options.parameters_file, self.code, "-p"),
            tag=services.tag,
            use_cached=services.original_run_id,
        )

"""``executor: {type: aws-step-functions, config: {...}}``: the pipeline as a Step Functions state machine.

``magnus execute -f pipeline.yaml -c aws.yaml`` renders the pipeline's execution plan as a state
machine of AWS Batch jobs (:mod:`magnus_executor_aws.definition`), registers the job definitions
it names, creates or updates the state machine, creates the run log and starts an execution named
after the run. With ``wait: true`` it follows the run from its run log, printing what a local run
prints, and ends as the run ended (Ctrl-C stops the execution). Inside the jobs the same
configuration runs each unit from its launch request, against a run log store and a catalog every
job reaches (an object store, a database). With ``output_file`` it writes the definition and submits
nothing.

The jobs import this module to load the executor named in the configuration: it imports no boto3.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Sequence

from magnus import defaults
from magnus.errors import ConfigurationError, UserInputError
from magnus.executor.base import PlanRenderer
from magnus.names import relative_inside
from magnus.reach import Reach
from magnus_executor_aws.constants import MAX_DEFINITION_BYTES, MAX_EXECUTION_NAME, MAX_PAYLOAD_BYTES, SERVICE_NAME
from magnus_executor_aws.settings import StepFunctionsSettings

if TYPE_CHECKING:
    from magnus.runtime.plan import Plan
    from magnus.runtime.services import RunOptions, RunServices
    from magnus.runtime.units import RunLogRecords
    from magnus_executor_aws.client import StepFunctions
    from magnus_executor_aws.definition import Rendered

# Step Functions' rule for execution and state machine names.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
# How long a run that ended FAIL waits for its execution to end before recording the steps it lost.
LOST_JOBS_WAIT_SECONDS = 60.0
logger = logging.getLogger(defaults.LOGGER_NAME)


class StepFunctionsExecutor(PlanRenderer, StepFunctionsSettings):
    """Renders a pipeline's plan as a Step Functions state machine; its units run in Batch jobs."""

    service_name: ClassVar[str] = SERVICE_NAME

    @property
    def engine_names_runs(self) -> bool:  # type: ignore[override]
        """A definition written to a file is started by someone else, who names each execution (a run):
        rendering it looks up no free run id in a store only the jobs may reach."""
        return bool(self.output_file)

    # ---- before anything is submitted ----------------------------------------------------------------
    def needed_reach(self) -> Reach:
        return Reach.ANYWHERE

    def where_steps_run(self) -> str:
        return "in AWS Batch jobs, out of this machine's reach"

    def reach_fix(self) -> str:
        return (
            "keep it where every job reaches it (run_log_store: chunked-fs with an s3:// log_folder, or db; "
            "catalog: fsspec on s3://)"
        )

    def folders_problem(self, folders: Sequence[str]) -> str:
        return (
            f"folder '{folders[0]}' is on this machine, which the AWS Batch jobs of the run cannot see; keep the "
            "state where every job reaches it (run_log_store: chunked-fs with an s3:// log_folder, or db; "
            "catalog: fsspec on s3://)"
        )

    def check(self, services: "RunServices") -> None:
        """Refuse, before the run log exists or anything is submitted, what cannot work on AWS.

        (The job queue and the image are required fields of the config.) Overrides must name a block of this config; the
        run id is the execution's name (Step Functions' rule); the definition must render (no
        conditional or loop step, a map's items location) within Step Functions' 1 MB; a resumed
        run's log must be readable. The jobs read the pipeline, configuration and parameters files
        from the image's working directory, so they must be inside the project folder.
        """
        self.check_override_names(services.pipeline.graph, self.overrides)
        if not self.output_file and not _NAME.fullmatch(services.run_id):
            raise UserInputError(
                f"run id '{services.run_id}': names an AWS Step Functions execution, so it must be 1 to "
                f"{MAX_EXECUTION_NAME} letters, digits, '-' or '_'"
            )
        self._rendered(services.pipeline.plan, services)
        if services.original_run_id:
            services.original_run_log  # noqa: B018 - read now: an unreadable run to resume is refused here

    def get_summary(self) -> Dict[str, Any]:
        """The config as the run log records it, environment values left out (their names kept): they
        reach the jobs as given, and a run log is read by more people than the state machine."""
        summary = super().get_summary()
        summary["environment"] = dict.fromkeys(self.environment, "(set)")
        for name, override in self.overrides.items():
            summary["overrides"][name]["environment"] = dict.fromkeys(override.environment, "(set)")
        return summary

    def state_machine(self, services: "RunServices") -> str:
        """The state machine's name: the configured one, else ``magnus-<pipeline file's stem>``."""
        if self.state_machine_name:
            if not _NAME.fullmatch(self.state_machine_name):
                raise ConfigurationError(
                    f"executor.config.state_machine_name '{self.state_machine_name}': 1 to 80 letters, digits, "
                    "'-' or '_'"
                )
            return self.state_machine_name
        stem = Path(services.options.pipeline_file or "pipeline").stem
        return ("magnus-" + re.sub(r"[^A-Za-z0-9_-]+", "-", stem))[:80].rstrip("-")

    # ---- the definition ---------------------------------------------------------------------------------
    def _rendered(self, plan: "Plan", services: "RunServices") -> "Rendered":
        """The definition and its job definitions; refused beyond Step Functions' 1 MB."""
        from magnus_executor_aws.definition import DefinitionBuilder

        reference = self._reference(services)
        name = self.state_machine(services)
        comment = f"magnus pipeline {reference.pipeline_file}"
        rendered = DefinitionBuilder(self, plan, reference, prefix=name, comment=comment).build()
        for state, parameters in rendered.task_parameters():
            size = len(json.dumps(parameters).encode())
            if size > MAX_PAYLOAD_BYTES:
                raise ConfigurationError(
                    f"state '{state}': what its job is submitted with is {size:,} bytes, over AWS Step Functions' "
                    f"payload limit of {MAX_PAYLOAD_BYTES:,}; pass less in executor.config.environment"
                )
        size = len(rendered.to_json().encode())
        if size > MAX_DEFINITION_BYTES:
            raise ConfigurationError(
                f"{services.options.pipeline_file or 'pipeline'}: its state machine definition is {size:,} bytes, "
                f"over AWS Step Functions' limit of {MAX_DEFINITION_BYTES:,}; split the pipeline into smaller ones"
            )
        return rendered

    def _reference(self, services: "RunServices") -> "RunOptions":
        """What every launch request carries: the files as the jobs read them, relative to the project folder."""
        import dataclasses

        written_to = Path(self.output_file or ".magnus/pipeline.yaml")
        reference = self.reference(services, written_to.with_name(written_to.stem + "-dag.yaml"))
        return dataclasses.replace(
            reference,
            pipeline_file=_in_image(reference.pipeline_file, "-f"),
            configuration_file=_in_image(self.step_configuration_file(services), "-c"),
            parameters_file=_in_image(reference.parameters_file, "-p"),
        )

    def render(self, plan: "Plan", services: "RunServices") -> str:
        """Write the definition (``output_file``), or submit it and start the run; its status.

        ``TRIGGERED`` when the definition was written or the run was started without waiting;
        the run's final status when it was followed to its end.
        """
        rendered = self._rendered(plan, services)
        if self.output_file:
            from magnus.atomic import write_atomically

            write_atomically(Path(self.output_file), rendered.to_json().encode(), durable=False)
            services.events.handed_off(f"AWS Step Functions state machine definition written to {self.output_file}")
            return defaults.TRIGGERED
        from magnus.runtime.units import UnitRecords
        from magnus_executor_aws.client import StepFunctions

        aws = StepFunctions(self.region)
        queues = [self.job_queue, *(override.job_queue for override in self.overrides.values() if override.job_queue)]
        aws.check_job_queues(queues)
        aws.register(rendered.job_definitions.values())
        machine = aws.deploy(self.state_machine(services), rendered.to_json(), self.role_arn)
        UnitRecords(services).begin_run()  # the run id is ours, before any job runs
        execution = aws.start(machine, services.run_id)
        if not self.wait:
            services.events.handed_off(
                f"Started AWS Step Functions execution {execution}\nfollow it with: magnus runs show "
                f"{services.run_id}{_config_option(services)} (or aws stepfunctions describe-execution "
                f"--execution-arn {execution})"
            )
            return defaults.TRIGGERED
        return self._follow(aws, execution, services)

    def _follow(self, aws: "StepFunctions", execution: str, services: "RunServices") -> str:
        """Tell the run's progress until it ends; its final status. Ctrl-C stops the execution.

        An execution that ends before the run recorded its end (a job that could not start, an
        execution stopped in the console) has the run recorded FAIL saying so. A run that ended FAIL
        may leave steps in progress whose jobs were killed before recording their end (a Spot
        reclaim, a container lost): once the execution ended, they are FAIL saying so.
        """
        from magnus.runtime.follow import RunFollower
        from magnus.runtime.step import INTERRUPTED
        from magnus.runtime.units import RunLogRecords
        from magnus_executor_aws.client import RUNNING

        follower = RunFollower(services.run_log_store, services.run_id, services.pipeline.graph, services.events)
        records = RunLogRecords(services.run_log_store, services.run_id, services.redactor)
        try:
            while True:
                status = follower.poll()
                if status == defaults.FAIL:
                    self._record_lost_jobs(aws, execution, records)
                if status is not None:
                    return status
                described = aws.describe(execution)
                if described["status"] != RUNNING:
                    status = follower.poll()
                    if status is not None:
                        return status
                    why = described.get("cause") or described.get("error") or ""
                    records.run_lost(
                        f"the AWS Step Functions execution ended {described['status']} before the run recorded its "
                        f"end{': ' + str(why)[:500] if why else ''}"
                    )
                    return follower.poll() or defaults.FAIL
                time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            aws.stop(execution, cause="interrupted from magnus (Ctrl-C)")
            records.run_lost(INTERRUPTED)
            follower.poll()
            raise

    def _record_lost_jobs(self, aws: "StepFunctions", execution: str, records: "RunLogRecords") -> None:
        """Steps a failed run left in progress FAIL, once the execution ended (a job Step Functions is
        stopping may still record its own end); left as they are when it has not ended within
        :data:`LOST_JOBS_WAIT_SECONDS`."""
        from magnus_executor_aws.client import RUNNING

        deadline = time.monotonic() + LOST_JOBS_WAIT_SECONDS
        while aws.describe(execution)["status"] == RUNNING:
            if time.monotonic() > deadline:
                return
            time.sleep(self.poll_seconds)
        lost = records.unfinished_lost(
            "its AWS Batch job ended before the step recorded its end (the job's reason: aws stepfunctions "
            f"get-execution-history --execution-arn {execution})"
        )
        for name in lost:
            logger.warning("step %s: its AWS Batch job ended before the step recorded its end", name)


def _config_option(services: "RunServices") -> str:
    configuration = services.options.configuration_file
    return f" -c {configuration}" if configuration else ""


def _in_image(path: str, given_as: str) -> str:
    """``path`` relative to the project folder, as the jobs read it from the image's working directory.

    Raises:
        ConfigurationError: the path is outside the project folder, so the image cannot hold it there.
    """
    if not path:
        return path
    project = os.getcwd()
    relative = relative_inside(path, project)
    if relative is None:
        raise ConfigurationError(
            f"{given_as} '{path}' is outside the project folder ({project}): the AWS Batch jobs read it from the "
            "image, which holds the project folder as its working directory; give a file inside the project folder"
        )
    return relative

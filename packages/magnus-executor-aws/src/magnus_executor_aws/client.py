"""The calls made to AWS: job definitions, the state machine, its executions (boto3, imported here only).

Every failure of a call is one line naming what was asked (``AWS Batch: RegisterJobDefinition
failed: ...``); a job queue that does not exist is refused before anything is created.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional

from magnus.errors import ConfigurationError, MagnusError

if TYPE_CHECKING:
    from magnus_executor_aws.definition import JobDefinition

# What an execution that ended reports (DescribeExecution's status).
RUNNING = "RUNNING"


class AwsError(MagnusError):
    """A call to AWS failed (exit 1: nothing of the user's input was wrong)."""


class StepFunctions:
    """One session of the AWS SDK (region from the config, else the SDK's default chain)."""

    def __init__(self, region: str) -> None:
        import boto3

        self.session = boto3.session.Session(region_name=region or None)
        self.sfn = self.session.client("stepfunctions")
        self.batch = self.session.client("batch")

    def _call(self, service: str, operation: str, method: Any, **arguments: Any) -> Any:
        try:
            return method(**arguments)
        except Exception as exc:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError...
            raise AwsError(f"{service}: {operation} failed: {exc}") from exc

    # ---- before submitting ---------------------------------------------------------------------------
    def check_job_queues(self, queues: Iterable[str]) -> None:
        """Refuse a job queue (name or ARN) that does not exist in the region.

        Raises:
            ConfigurationError: one line naming the queue.
        """
        for queue in sorted(set(queues)):
            found = self._call("AWS Batch", "DescribeJobQueues", self.batch.describe_job_queues, jobQueues=[queue])
            if not found.get("jobQueues"):
                region = self.session.region_name or "the default region"
                raise ConfigurationError(
                    f"executor.config.job_queue '{queue}': no such AWS Batch job queue in {region}; "
                    "create it (see the package README) or name an existing one"
                )

    def register(self, definitions: Iterable["JobDefinition"]) -> None:
        """Register each job definition unless an active one of its name exists (the name holds a hash of
        its image and resources, so an unchanged one is reused)."""
        for definition in definitions:
            found = self._call(
                "AWS Batch",
                "DescribeJobDefinitions",
                self.batch.describe_job_definitions,
                jobDefinitionName=definition.name,
                status="ACTIVE",
            )
            if any(
                item.get("containerProperties", {}).get("image") == definition.image
                for item in found.get("jobDefinitions", [])
            ):
                continue
            self._call(
                "AWS Batch",
                "RegisterJobDefinition",
                self.batch.register_job_definition,
                jobDefinitionName=definition.name,
                type="container",
                containerProperties=definition.container_properties(),
                tags={"magnus": "job-definition"},
            )

    # ---- the state machine ------------------------------------------------------------------------
    def deploy(self, name: str, definition: str, role_arn: str) -> str:
        """Create the state machine ``name`` or update it to ``definition``; its ARN.

        Raises:
            ConfigurationError: it does not exist and no role was configured to create it with.
        """
        existing = self._find(name)
        if existing:
            arguments: Dict[str, Any] = {"stateMachineArn": existing, "definition": definition}
            if role_arn:
                arguments["roleArn"] = role_arn
            self._call("AWS Step Functions", "UpdateStateMachine", self.sfn.update_state_machine, **arguments)
            return existing
        if not role_arn:
            raise ConfigurationError(
                f"executor.config.role_arn: state machine '{name}' does not exist yet and creating it needs the "
                "ARN of the role Step Functions runs it with"
            )
        created = self._call(
            "AWS Step Functions",
            "CreateStateMachine",
            self.sfn.create_state_machine,
            name=name,
            definition=definition,
            roleArn=role_arn,
        )
        return str(created["stateMachineArn"])

    def _find(self, name: str) -> Optional[str]:
        paginator = self.sfn.get_paginator("list_state_machines")
        try:
            for page in paginator.paginate():
                for machine in page.get("stateMachines", []):
                    if machine["name"] == name:
                        return str(machine["stateMachineArn"])
        except Exception as exc:
            raise AwsError(f"AWS Step Functions: ListStateMachines failed: {exc}") from exc
        return None

    # ---- executions -------------------------------------------------------------------------------
    def start(self, state_machine: str, run_id: str) -> str:
        """Start an execution named after the run; its ARN."""
        started = self._call(
            "AWS Step Functions",
            "StartExecution",
            self.sfn.start_execution,
            stateMachineArn=state_machine,
            name=run_id,
            input=json.dumps({}),
        )
        return str(started["executionArn"])

    def describe(self, execution: str) -> Dict[str, Any]:
        described: Dict[str, Any] = self._call(
            "AWS Step Functions", "DescribeExecution", self.sfn.describe_execution, executionArn=execution
        )
        return described

    def stop(self, execution: str, cause: str) -> None:
        self._call("AWS Step Functions", "StopExecution", self.sfn.stop_execution, executionArn=execution, cause=cause)

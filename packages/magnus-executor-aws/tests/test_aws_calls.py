"""What the executor and the secrets backend ask of AWS, against moto's server (Batch, Step Functions,
Secrets Manager over real HTTP; no container runs here)."""

from __future__ import annotations

import json

import pytest

from magnus.errors import ConfigurationError, SecretNotFoundError
from magnus_executor_aws.client import StepFunctions
from magnus_executor_aws.definition import JobDefinition
from magnus_executor_aws.secrets import SecretsManagerSecrets
from magnus_executor_aws.testing import Emulator

MACHINE = json.dumps({"StartAt": "done", "States": {"done": {"Type": "Succeed"}}})


@pytest.fixture
def aws(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> StepFunctions:
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    return StepFunctions(emulator.region)


def test_job_definitions_are_registered_once_and_reused_unchanged(aws: StepFunctions, emulator: Emulator) -> None:
    definition = JobDefinition(
        name="magnus-reuse-0123456789ab", image="localhost/x:1", vcpus=1, memory=512, job_role_arn=""
    )
    aws.register([definition])
    aws.register([definition])
    found = emulator.client("batch").describe_job_definitions(jobDefinitionName=definition.name)["jobDefinitions"]
    assert [item["revision"] for item in found] == [1]
    assert found[0]["containerProperties"]["image"] == "localhost/x:1"


def test_the_state_machine_is_created_then_updated(aws: StepFunctions, emulator: Emulator) -> None:
    created = aws.deploy("magnus-deploy", MACHINE, emulator.role_arn)
    changed = MACHINE.replace("done", "finished")
    assert aws.deploy("magnus-deploy", changed, "") == created
    described = emulator.client("stepfunctions").describe_state_machine(stateMachineArn=created)
    assert json.loads(described["definition"]) == json.loads(changed)


def test_creating_a_state_machine_needs_a_role(aws: StepFunctions) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^executor.config.role_arn: state machine 'magnus-new' does not exist"
    ):
        aws.deploy("magnus-new", MACHINE, "")


def test_a_job_queue_that_does_not_exist_is_refused(aws: StepFunctions, emulator: Emulator) -> None:
    aws.check_job_queues([emulator.job_queue])
    with pytest.raises(
        ConfigurationError, match=r"^executor.config.job_queue 'no-such-queue': no such AWS Batch job queue"
    ):
        aws.check_job_queues(["no-such-queue"])


def test_secrets_are_read_from_secrets_manager_by_name(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    emulator.client("secretsmanager").create_secret(Name="team/API_KEY", SecretString="s3cr3t-value-aws")
    secrets = SecretsManagerSecrets(prefix="team/")
    assert secrets.get("API_KEY") == "s3cr3t-value-aws"
    with pytest.raises(SecretNotFoundError, match="no secret 'team/MISSING' in AWS Secrets Manager") as refused:
        secrets.get("MISSING")
    assert "s3cr3t" not in str(refused.value)
    assert "s3cr3t" not in json.dumps(secrets.get_summary()), "a value never enters the config recorded in a run log"

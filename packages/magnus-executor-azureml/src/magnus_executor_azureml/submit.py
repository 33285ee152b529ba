"""Sending a rendered pipeline job to an Azure ML workspace through ``MLClient.jobs.create_or_update``.

The job is the YAML the executor wrote, read back by Azure's own ``load_job`` (its schema checks),
validated, and handed to the workspace's client; the workspace's answer gives the studio URL.
Credentials come from ``DefaultAzureCredential`` (environment, managed identity, ``az login``),
never from the configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from magnus.errors import ConfigurationError, MagnusError

if TYPE_CHECKING:
    from azure.ai.ml.entities import PipelineJob

    from magnus_executor_azureml.settings import AzureMLSettings


def load_pipeline_job(path: str) -> "PipelineJob":
    """The pipeline job of the YAML at ``path``, as Azure's SDK reads and validates it.

    Raises:
        ConfigurationError: the SDK refuses the job (one line, its first problem).
    """
    import os

    # The SDK reads control-flow nodes (parallel_for) in a job's YAML only with its preview flag on.
    os.environ.setdefault("AZURE_ML_CLI_PRIVATE_FEATURES_ENABLED", "true")
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import PipelineJob

    try:
        job = load_job(source=path)
    except Exception as exc:  # the SDK raises many kinds; each is a job it refuses
        raise ConfigurationError(f"{path}: Azure ML refuses the pipeline job: {_first_line(exc)}") from exc
    if not isinstance(job, PipelineJob):
        raise ConfigurationError(f"{path}: not a pipeline job")
    result = job._validate()
    if not result.passed:
        raise ConfigurationError(f"{path}: Azure ML refuses the pipeline job: {_first_line(result.error_messages)}")
    return job


def workspace_client(settings: "AzureMLSettings") -> Any:
    """The workspace's ``MLClient``, signed in with ``DefaultAzureCredential``."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(
        DefaultAzureCredential(),
        subscription_id=settings.subscription_id,
        resource_group_name=settings.resource_group,
        workspace_name=settings.workspace_name,
    )


def submit_job(
    settings: "AzureMLSettings", path: str, client_for: Optional[Callable[["AzureMLSettings"], Any]] = None
) -> str:
    """Create the job of the YAML at ``path`` in the workspace; the studio URL of the job created.

    ``client_for`` makes the workspace's client (``MLClient``; tests give their own).

    Raises:
        ConfigurationError: the SDK refuses the job.
        MagnusError: the workspace refused it or could not be reached.
    """
    job = load_pipeline_job(path)
    client = (client_for or workspace_client)(settings)
    try:
        created = client.jobs.create_or_update(job, experiment_name=settings.experiment_name)
    except Exception as exc:  # noqa: BLE001 - whatever the service or the network raised
        raise MagnusError(f"submitting to Azure ML workspace {settings.workspace_name} failed: {_first_line(exc)}")
    return str(created.studio_url or created.name)


def _first_line(problem: object) -> str:
    text = str(problem).strip()
    return text.splitlines()[0] if text else type(problem).__name__

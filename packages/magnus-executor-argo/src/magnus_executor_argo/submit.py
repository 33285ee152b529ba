"""Sending a rendered workflow to an Argo server through hera's workflow service."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

from magnus.errors import ConfigurationError, MagnusError

if TYPE_CHECKING:
    from hera.workflows import models as m

    from magnus_executor_argo.settings import ArgoSettings


def submit_workflow(executor: "ArgoSettings", workflow: "Union[m.Workflow, m.CronWorkflow]") -> str:
    """Create the workflow (or the cron workflow) on the server; return the name the server gave it."""
    from hera.workflows import WorkflowsService
    from hera.workflows import models as m

    if not executor.argo_server_url:
        raise ConfigurationError("executor.config.submit is true but argo_server_url is not set")
    token = os.environ.get(executor.token_environment_variable) or None
    service = WorkflowsService(
        host=executor.argo_server_url, token=token, verify_ssl=executor.verify_ssl, namespace=executor.namespace
    )
    try:
        if isinstance(workflow, m.CronWorkflow):
            request = m.CreateCronWorkflowRequest(cron_workflow=workflow)
            created: Union[m.Workflow, m.CronWorkflow] = service.create_cron_workflow(
                request, namespace=executor.namespace
            )
        else:
            created = service.create_workflow(m.WorkflowCreateRequest(workflow=workflow), namespace=executor.namespace)
    except Exception as exc:
        raise MagnusError(f"submitting to {executor.argo_server_url} failed: {exc}") from exc
    return created.metadata.name or ""

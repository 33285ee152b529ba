"""Argo's JSON schema, vendored in ``tests/argo-schema/`` (its source and licence are in the README there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

# Argo's schema of every resource (Workflow, CronWorkflow, ...), as published by the Argo project.
SCHEMA = Path(__file__).resolve().parent / "argo-schema" / "workflows-schema.json"


@pytest.fixture(scope="session")
def argo_schema() -> Dict[str, Any]:
    """Argo's JSON schema of all its resources."""
    schema: Dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


def _validator(schema: Dict[str, Any], kind: str) -> Any:
    import jsonschema

    return jsonschema.Draft7Validator({**schema, "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"})


@pytest.fixture(scope="session")
def workflow_validator(argo_schema: Dict[str, Any]) -> Any:
    """A jsonschema validator of ``io.argoproj.workflow.v1alpha1.Workflow``."""
    return _validator(argo_schema, "Workflow")


@pytest.fixture(scope="session")
def cron_workflow_validator(argo_schema: Dict[str, Any]) -> Any:
    """A jsonschema validator of ``io.argoproj.workflow.v1alpha1.CronWorkflow``."""
    return _validator(argo_schema, "CronWorkflow")

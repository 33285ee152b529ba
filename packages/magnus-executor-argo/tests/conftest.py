"""Argo's JSON schema, kept in the shared folder beside the repository (see shared/argo/README.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

SCHEMA_CANDIDATES = [
    Path(os.environ.get("MAGNUS_ARGO_SCHEMA", "/nonexistent")),
    Path(__file__).resolve().parents[4] / "shared" / "argo" / "workflows-schema.json",
    Path(__file__).resolve().parents[3] / "shared" / "argo" / "workflows-schema.json",
]


@pytest.fixture(scope="session")
def argo_schema() -> Dict[str, Any]:
    """Argo's JSON schema of all its resources; fails loudly when missing."""
    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            schema: Dict[str, Any] = json.loads(candidate.read_text())
            return schema
    raise RuntimeError(f"Argo's JSON schema not found (looked in {[str(c) for c in SCHEMA_CANDIDATES]})")


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

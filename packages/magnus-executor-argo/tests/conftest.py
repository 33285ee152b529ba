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
def workflow_validator() -> Any:
    """A jsonschema validator of ``io.argoproj.workflow.v1alpha1.Workflow``; fails loudly when missing."""
    import jsonschema

    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            schema: Dict[str, Any] = json.loads(candidate.read_text())
            break
    else:
        raise RuntimeError(f"Argo's JSON schema not found (looked in {[str(c) for c in SCHEMA_CANDIDATES]})")
    root = {**schema, "$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"}
    return jsonschema.Draft7Validator(root)

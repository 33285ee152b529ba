"""The plugin against the magnus.testing contract suite of its kind, plus its own tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest
from magnus.config import create_service
from magnus.plugins import is_installed
from magnus.secrets import BaseSecrets
from magnus.testing import SecretsContract
from magnus.testing.secrets import SecretsFactory

from __PLUGIN_IMPORT__.plugin import __PLUGIN_CLASS__


class TestContract(SecretsContract):
    @pytest.fixture
    def make_secrets(self, tmp_path: Path) -> SecretsFactory:
        def make(secrets: Dict[str, str]) -> BaseSecrets:
            (tmp_path / "secrets.json").write_text(json.dumps(secrets))
            return __PLUGIN_CLASS__(path=str(tmp_path / "secrets.json"))

        return make


@pytest.mark.skipif(not is_installed("secrets", "__PLUGIN_NAME__"), reason="not installed: pip install -e .")
def test_magnus_finds_the_plugin_by_its_entry_point() -> None:
    service = create_service("secrets", {"type": "__PLUGIN_NAME__", "config": {"path": "x.json"}})
    assert isinstance(service, __PLUGIN_CLASS__)

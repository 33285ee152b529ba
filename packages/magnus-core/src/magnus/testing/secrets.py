"""The promises of :class:`~magnus.secrets.BaseSecrets`, as tests."""

from __future__ import annotations

from typing import Callable, Dict

import pytest

from magnus.errors import SecretNotFoundError
from magnus.secrets import BaseSecrets

SecretsFactory = Callable[[Dict[str, str]], BaseSecrets]

KNOWN = {"API_KEY": "s3cr3t-value-9f8e", "DB_PASSWORD": "p@ss w0rd=with spaces"}


class SecretsContract:
    """Subclass and provide ``make_secrets``: a factory of backends holding the given secrets."""

    @pytest.fixture
    def make_secrets(self) -> SecretsFactory:
        raise NotImplementedError("provide a make_secrets fixture")

    def test_known_secrets_are_returned(self, make_secrets: SecretsFactory) -> None:
        backend = make_secrets(KNOWN)
        for name, value in KNOWN.items():
            assert backend.get(name) == value

    def test_missing_secret_names_the_key_and_no_value(self, make_secrets: SecretsFactory) -> None:
        backend = make_secrets(KNOWN)
        with pytest.raises(SecretNotFoundError) as raised:
            backend.get("MISSING_KEY")
        message = str(raised.value)
        assert "MISSING_KEY" in message
        for value in KNOWN.values():
            assert value not in message

    def test_summary_holds_no_value(self, make_secrets: SecretsFactory) -> None:
        backend = make_secrets(KNOWN)
        summary = repr(backend.get_summary()) + repr(backend)
        for value in KNOWN.values():
            assert value not in summary

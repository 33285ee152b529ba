"""The promises of :class:`~magnus.secrets.BaseSecrets`, as tests."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, List

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


class KnownSecrets(BaseSecrets):
    """A secrets backend holding the values of its configuration, for tests that need a secret in a run.

    Register it with :func:`magnus.testing.plugins.installed_plugins` (``{"secrets": {"known":
    "magnus.testing.secrets:KnownSecrets"}}``) and configure ``secrets: {type: known, config:
    {values: {name: value}}}``. Every value is masked from the start of the run.
    """

    service_name: ClassVar[str] = "known"
    values: Dict[str, str] = {}

    def get(self, name: str) -> str:
        if name not in self.values:
            raise SecretNotFoundError(name, self.service_name)
        return self.values[name]

    def values_to_mask(self) -> List[str]:
        return list(self.values.values())

    def get_summary(self) -> Dict[str, Any]:
        """The names of the secrets, never their values."""
        return {"service_name": self.service_name, "service_type": self.service_type, "names": sorted(self.values)}

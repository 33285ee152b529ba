"""The secrets contract."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from magnus.errors import SecretNotFoundError
from magnus.service import BaseService


class BaseSecrets(BaseService):
    """Reads secrets for tasks (``magnus.get_secret``).

    A secret's value never reaches a run log, a catalog, a log line or an exception message;
    a missing secret raises :class:`~magnus.errors.SecretNotFoundError` naming only the key.
    """

    service_type: ClassVar[str] = "secrets"

    @abstractmethod
    def get(self, name: str) -> str:
        """The value of secret ``name``.

        Raises:
            SecretNotFoundError: the backend has no secret of that name.
        """


class DoNothingSecretsManager(BaseSecrets):
    """No secrets backend: every look-up is an error that says how to configure one."""

    service_name: ClassVar[str] = "do-nothing"

    def get(self, name: str) -> str:
        raise SecretNotFoundError(
            name,
            self.service_name,
            "configure a secrets backend, e.g. 'secrets: {type: dotenv}' (pip install magnus-secrets)",
        )

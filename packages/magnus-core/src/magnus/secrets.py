"""The secrets contract."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Iterable

from magnus.errors import SecretNotFoundError
from magnus.service import BaseService


class BaseSecrets(BaseService):
    """Reads secrets for tasks (``magnus.get_secret``).

    A secret's value never reaches a run log, a catalog, a log line or an exception message;
    a missing secret raises `SecretNotFoundError` naming only the key.
    """

    service_type: ClassVar[str] = "secrets"

    def values_to_mask(self) -> Iterable[str]:
        """Secret values known up front, masked in run output from the start of the run.

        Values read with ``get`` are masked anyway; a backend that holds a known set (a file)
        returns it here so that a secret is masked even when a step obtains it another way.
        """
        return ()

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

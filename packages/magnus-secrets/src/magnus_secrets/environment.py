"""``secrets: {type: env-secrets-manager, config: {prefix, suffix}}``: secrets from environment variables.

The secret ``name`` is the variable ``<prefix><name><suffix>`` (both empty by default), as in
magnus 0.5.1; containers and pods get them from their platform's secret store.
"""

from __future__ import annotations

import os
from typing import ClassVar, Iterable

from pydantic import Field

from magnus.errors import SecretNotFoundError
from magnus.secrets import BaseSecrets


class EnvironmentSecrets(BaseSecrets):
    """Reads secrets from the environment of the process running the step."""

    service_name: ClassVar[str] = "env-secrets-manager"

    prefix: str = Field(default="", description="Put before a secret's name to make its environment variable.")
    suffix: str = Field(default="", description="Put after a secret's name to make its environment variable.")

    def variable(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def values_to_mask(self) -> Iterable[str]:
        if not (self.prefix or self.suffix):
            return ()  # without a prefix or suffix every variable would count as a secret
        return [
            value
            for key, value in os.environ.items()
            if key.startswith(self.prefix) and key.endswith(self.suffix) and len(key) > len(self.prefix + self.suffix)
        ]

    def get(self, name: str) -> str:
        try:
            return os.environ[self.variable(name)]
        except KeyError:
            raise SecretNotFoundError(
                name, self.service_name, f"environment variable {self.variable(name)} is not set"
            ) from None

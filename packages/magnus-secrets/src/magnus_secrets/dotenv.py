"""``secrets: {type: dotenv, config: {location: .env}}``: secrets from a dotenv file.

``KEY=value`` and ``export KEY="value"`` lines, comments and quoting as python-dotenv reads them.
The file is read once, on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Dict, Iterable, Optional

from pydantic import Field, PrivateAttr

from magnus.errors import SecretNotFoundError
from magnus.secrets import BaseSecrets


class DotEnvSecrets(BaseSecrets):
    """Reads secrets from a dotenv file (``.env`` by default)."""

    service_name: ClassVar[str] = "dotenv"

    location: str = Field(default=".env", description="The dotenv file to read secrets from.")

    _values: Optional[Dict[str, str]] = PrivateAttr(default=None)

    def _load(self) -> Dict[str, str]:
        if self._values is None:
            from dotenv import dotenv_values

            path = Path(self.location)
            if not path.is_file():
                return {}
            self._values = {key: value for key, value in dotenv_values(path).items() if value is not None}
        return self._values

    def values_to_mask(self) -> Iterable[str]:
        return list(self._load().values())

    def get(self, name: str) -> str:
        values = self._load()
        if name not in values:
            hint = "" if Path(self.location).is_file() else f"the file {self.location} does not exist"
            raise SecretNotFoundError(name, f"{self.service_name} ({self.location})", hint)
        return values[name]

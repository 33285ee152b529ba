"""``secrets: {type: __PLUGIN_NAME__, config: {path: secrets.json}}``.

A working skeleton: a secrets backend reading a JSON object of names to values. Keep its shape
(a pydantic model subclassing the base class, config fields as model fields, ``service_name``
matching the entry point) and replace the body with your plugin's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Dict, Iterable, Optional

from magnus.errors import SecretNotFoundError
from magnus.secrets import BaseSecrets
from pydantic import PrivateAttr


class __PLUGIN_CLASS__(BaseSecrets):
    """Secrets from a JSON file."""

    service_name: ClassVar[str] = "__PLUGIN_NAME__"

    path: str = "secrets.json"

    _values: Optional[Dict[str, str]] = PrivateAttr(default=None)

    def _load(self) -> Dict[str, str]:
        if self._values is None:
            file = Path(self.path)
            self._values = {str(k): str(v) for k, v in json.loads(file.read_text()).items()} if file.is_file() else {}
        return self._values

    def values_to_mask(self) -> Iterable[str]:
        return list(self._load().values())

    def get(self, name: str) -> str:
        try:
            return self._load()[name]
        except KeyError:
            raise SecretNotFoundError(name, self.service_name, f"not in {self.path}") from None

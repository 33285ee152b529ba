"""How ``put_object``/``get_object`` turn python objects into files."""

from __future__ import annotations

import pickle
from abc import abstractmethod
from typing import Any, ClassVar

from magnus.service import BaseService


class BasePickler(BaseService):
    """Serialises objects to a file named ``<name><extension>`` and back."""

    service_type: ClassVar[str] = "pickler"
    extension: ClassVar[str] = ""

    @abstractmethod
    def dump(self, data: Any, path: str) -> None:
        """Write ``data`` to ``path + extension``."""

    @abstractmethod
    def load(self, path: str) -> Any:
        """Read the object written by [`dump`][] at ``path + extension``."""


class NativePickler(BasePickler):
    """Python's pickle."""

    service_name: ClassVar[str] = "pickle"
    extension: ClassVar[str] = ".pickle"

    def dump(self, data: Any, path: str) -> None:
        with open(path + self.extension, "wb") as handle:
            pickle.dump(data, handle)

    def load(self, path: str) -> Any:
        with open(path + self.extension, "rb") as handle:
            return pickle.load(handle)

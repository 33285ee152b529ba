"""Keeping secret values out of everything a run writes.

Every value read through the secrets backend during a run is registered here; step output (on
the console and in execution logs), step messages, parameters and metrics pass through
:meth:`Redactor.redact` before they are written, and each occurrence becomes ``***``.
"""

from __future__ import annotations

from typing import Any, Iterable, Set

MASK = "***"
# Shorter values would mask ordinary text (a secret "1" would hide every digit one).
MINIMUM_LENGTH = 4


class Redactor:
    """The secret values of one run, and their removal from text and data."""

    def __init__(self) -> None:
        self._values: Set[str] = set()
        self._ordered: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= MINIMUM_LENGTH and value not in self._values:
                self._values.add(value)
                # Longest first, so a secret containing another is masked whole.
                self._ordered = sorted(self._values, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def redact_data(self, data: Any) -> Any:
        """The same JSON-like data with secrets masked in every string (keys included)."""
        if not self._values:
            return data
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact_data(key): self.redact_data(value) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(self.redact_data(item) for item in data)
        return data

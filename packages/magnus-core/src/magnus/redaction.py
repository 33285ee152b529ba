"""Keeping secret values out of everything a run writes.

Every value read through the secrets backend during a run, and every value the backend declares
up front (``values_to_mask``), is registered here. What a run records passes through
:meth:`Redactor.redact` or :meth:`Redactor.redact_data` first, and each occurrence becomes ``***``:

- the run log: the initial parameters, the parameters steps set, step messages, metrics, the
  run config;
- experiment trackers: the run's parameters and what steps track;
- manifests handed to an engine (Argo's workflow arguments);
- what a step prints (console and execution log) and what it logs with :mod:`logging`
  (:mod:`magnus.capture`), a value split across several ``write`` calls included.

Each secret is masked in three forms: as it is, as it appears inside a JSON string
(``json.dumps(value)[1:-1]``: quotes, backslashes, newlines and non-ASCII escaped) and as it
appears inside a python ``repr`` (``repr(value)[1:-1]``, e.g. in an exception message that shows a
list or a dict holding it).

Limits that stay:

- values shorter than :data:`MINIMUM_LENGTH` (4) characters are not masked: they would mask
  ordinary text (a secret ``1`` would hide every digit one);
- other encodings are not recognised: base64, URL-encoding, hex, a value cut in pieces or
  reversed by the task's own code, escapes applied twice (a JSON string inside a JSON string);
- a parameter that holds a secret is masked where it is recorded, so later steps read ``***``:
  read secrets with ``magnus.get_secret``, do not pass them as parameters;
- output written by other processes a step starts goes through the same masking only when it
  passes through magnus (a shell task's output does; a file a program writes itself does not).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, List, Set

MASK = "***"
# Shorter values would mask ordinary text (a secret "1" would hide every digit one).
MINIMUM_LENGTH = 4


def masked_forms(value: str) -> Set[str]:
    """The forms of ``value`` that are masked: itself, JSON-escaped and ``repr``-escaped."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]}
    return {form for form in forms if len(form) >= MINIMUM_LENGTH}


class Redactor:
    """The secret values of one run, and their removal from text and data."""

    def __init__(self) -> None:
        self._values: Set[str] = set()
        self._forms: Set[str] = set()
        self._ordered: List[str] = []

    def add(self, values: Iterable[str]) -> None:
        """Mask ``values`` from now on (those shorter than :data:`MINIMUM_LENGTH` are ignored)."""
        for value in values:
            if isinstance(value, str) and len(value) >= MINIMUM_LENGTH and value not in self._values:
                self._values.add(value)
                self._forms |= masked_forms(value)
                # Longest first, so a secret containing another is masked whole.
                self._ordered = sorted(self._forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    @property
    def longest(self) -> int:
        """Length of the longest form masked (0 when there is nothing to mask)."""
        return len(self._ordered[0]) if self._ordered else 0

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def unfinished(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins a masked form without completing it.

        A stream that writes ``text`` now holds that many characters back until more comes, so a
        secret written in two pieces (``"abc"`` then ``"def"``) is still masked.
        """
        longest = 0
        for form in self._ordered:
            for length in range(min(len(form) - 1, len(text)), longest, -1):
                if text.endswith(form[:length]):
                    longest = length
                    break
        return longest

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

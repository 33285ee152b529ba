"""A bounded memory of what a process learned: the most recently set entries, the oldest forgotten.

The store remembers where parts lie and what they held so that a process walking or following a
run of thousands of items does not find or read them again; a bound keeps a long-lived process
(a follower of a map of 100,000 items) from holding the whole run.
"""

from __future__ import annotations

import collections
from typing import Generic, Optional, TypeVar

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


class Recent(Generic[_Key, _Value]):
    """A mapping that keeps its ``size`` most recently set entries and forgets the oldest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: "collections.OrderedDict[_Key, _Value]" = collections.OrderedDict()

    def get(self, key: _Key) -> Optional[_Value]:
        return self._entries.get(key)

    def __setitem__(self, key: _Key, value: _Value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

"""Time stamps in the run log format of magnus 0.5.1 (``str(datetime.now())``)."""

from __future__ import annotations

from datetime import datetime


def now() -> str:
    return str(datetime.now())


def duration(start: str, end: str) -> str:
    """``end - start`` as ``H:MM:SS.ffffff``."""
    return str(datetime.fromisoformat(end) - datetime.fromisoformat(start))

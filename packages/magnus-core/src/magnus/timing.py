"""Time stamps in the run log format of magnus 0.5.1 (``str(datetime.now())``), and durations as people read them."""

from __future__ import annotations

from datetime import datetime


def now() -> str:
    return str(datetime.now())


def duration(start: str, end: str) -> str:
    """``end - start`` as ``H:MM:SS.ffffff``."""
    return str(datetime.fromisoformat(end) - datetime.fromisoformat(start))


def format_seconds(seconds: float) -> str:
    """A duration as the progress lines and ``magnus runs`` print it: ``0.21s``, ``42.0s``, ``3m05s``, ``1h02m``."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"

"""``magnus runs list``: the ``--since`` option read into a time, and the runs as a table."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import List, Optional, Sequence

from magnus.datastore.listing import RunSummary
from magnus.errors import UserInputError
from magnus.terminal import for_terminal as shown
from magnus.timing import format_seconds

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = ("RUN ID", "STATUS", "TAG", "START", "DURATION")


def parse_since(text: str, now: Optional[datetime] = None) -> datetime:
    """``2h``, ``30m``, ``3d``, ``1w`` ago, or a date / date and time (``2026-11-25``, ``2026-11-25 14:00``).

    Times are local, as run logs record them.

    Raises:
        UserInputError: naming ``--since`` and what it accepts.
    """
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return (now or datetime.now()) - timedelta(**{_UNITS[unit]: amount})
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserInputError(
            f"--since {text!r}: expected a duration ago (30m, 2h, 3d, 1w) or a date/time (2026-11-25, 2026-11-25T14:00)"
        ) from None


def format_time(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def format_duration(summary: RunSummary) -> str:
    """``1.25s``, ``3m 04s``, ``2h 05m``; ``running`` when it has not ended, ``-`` when it never began."""
    if summary.duration is None:
        return "-" if summary.start is None else "running"
    return describe_duration(summary.duration)


def describe_duration(span: timedelta) -> str:
    return format_seconds(span.total_seconds())


def format_table(summaries: Sequence[RunSummary]) -> str:
    """The runs as aligned columns with a header line (each cell through ``for_terminal``); a line
    saying so when there are none."""
    if not summaries:
        return "no runs found\n"
    rows: List[Sequence[str]] = [COLUMNS]
    for summary in summaries:
        rows.append(
            (
                shown(summary.run_id),
                shown(summary.status),
                shown(summary.tag or "-"),
                format_time(summary.start),
                format_duration(summary),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"

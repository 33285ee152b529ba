"""A run's steps on a time axis, as inline SVG: one bar per step, map iterations and branches included.

A resumed run's reused steps (``--use-cached``) ran in the earlier run: they have no bar.

Each bar spans the step's first attempt start to its last attempt end (a composite step spans its
branches' steps) and is filled with its status colour. Bars carry ``class="bar status-<STATUS>"``
and ``data-step="<internal name>"`` for readers and tests. A very long run (a map of thousands of
items) shows its first ``max_rows`` steps and says how many it left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import List, Optional, Union

from magnus.datastore.listing import branch_label, span
from magnus.datastore.models import BranchLog, RunLog
from magnus.diagram import NOT_RUN, STATUS_COLOURS
from magnus.runs.listing import describe_duration

LABEL_WIDTH = 300
BAR_WIDTH = 560
ROW_HEIGHT = 20
AXIS_HEIGHT = 24


@dataclass(frozen=True)
class Bar:
    name: str
    label: str
    depth: int
    status: str
    start: datetime
    end: datetime


def bars(run_log: RunLog) -> List[Bar]:
    """A bar for every step that has a start and an end, in the order of the run's tree."""
    found: List[Bar] = []
    _bars(run_log, 0, found, leave_out_reused=bool(run_log.original_run_id))
    return found


def _bars(log: Union[RunLog, BranchLog], depth: int, found: List[Bar], leave_out_reused: bool, label: str = "") -> None:
    """``leave_out_reused``: a resumed run's steps copied from the run it resumes keep that run's times.
    ``label``: the branch's own part of its name (``0.01`` of the map item ``m.0.01``)."""
    for step in log.steps.values():
        if leave_out_reused and step.mock:
            continue
        start, end = span(step)
        if start is not None and end is not None:
            shown = f"{step.name} [{label}]" if depth else step.name
            found.append(Bar(step.internal_name, shown, depth, step.status, start, max(start, end)))
        for branch in step.branches.values():
            _bars(branch, depth + 1, found, leave_out_reused, branch_label(step, branch))


def timeline_svg(run_log: RunLog, max_rows: int = 300) -> str:
    """The SVG element (to put inline in a page); a paragraph saying so when no step has times."""
    every = bars(run_log)
    if not every:
        return '<p class="empty">No step recorded a start and an end.</p>'
    shown = every[:max_rows]
    first = min(bar.start for bar in every)
    last = max(bar.end for bar in every)
    total = max((last - first).total_seconds(), 1e-6)
    height = AXIS_HEIGHT + ROW_HEIGHT * len(shown) + 4
    width = LABEL_WIDTH + BAR_WIDTH + 80
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    ]
    for tick in range(5):
        x = LABEL_WIDTH + BAR_WIDTH * tick / 4
        moment = describe_duration((last - first) * (tick / 4))
        parts.append(f'<line x1="{x:.1f}" y1="{AXIS_HEIGHT - 6}" x2="{x:.1f}" y2="{height}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{x:.1f}" y="{AXIS_HEIGHT - 10}" text-anchor="middle" fill="#555">{moment}</text>')
    for row, bar in enumerate(shown):
        y = AXIS_HEIGHT + row * ROW_HEIGHT
        x = LABEL_WIDTH + BAR_WIDTH * (bar.start - first).total_seconds() / total
        length = max(BAR_WIDTH * (bar.end - bar.start).total_seconds() / total, 3.0)
        colour = STATUS_COLOURS.get(bar.status, STATUS_COLOURS[NOT_RUN])
        took = describe_duration(bar.end - bar.start)
        parts.append(
            f'<text x="{4 + 14 * bar.depth}" y="{y + 14}" fill="#202124">{escape(_clip(bar.label, bar.depth))}</text>'
        )
        parts.append(
            f'<rect class="bar status-{escape(bar.status)}" data-step="{escape(bar.name)}" x="{x:.1f}" y="{y + 3}" '
            f'width="{length:.1f}" height="{ROW_HEIGHT - 6}" rx="3" fill="{colour}">'
            f"<title>{escape(bar.name)}: {escape(bar.status)}, {took}</title></rect>"
        )
        parts.append(f'<text x="{x + length + 4:.1f}" y="{y + 14}" fill="#555">{took}</text>')
    parts.append("</svg>")
    left_out = len(every) - len(shown)
    note = f'<p class="note">{left_out} more steps not drawn.</p>' if left_out else ""
    return "".join(parts) + note


def _clip(text: str, depth: int, room: Optional[int] = None) -> str:
    limit = room or max(12, 44 - 2 * depth)
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""``magnus runs show``: one run as a tree of its steps and branches.

Map iterations, parallel branches and nested dags appear under the step that holds them, each
step with its type, status, duration, attempts and message (its first line), then the objects
it put (``returns`` of kind object, ``put_object``) with their pickled size. What users wrote
(names, a map's values, messages, the tag) is shown through :func:`~magnus.terminal.for_terminal`.
"""

from __future__ import annotations

import shlex
from typing import List, Tuple, Union

from magnus.datastore.listing import branch_label, span, summarize
from magnus.datastore.models import BranchLog, RunLog, StepLog
from magnus.runs.listing import describe_duration, format_duration, format_time
from magnus.terminal import for_terminal as shown

_Row = Tuple[str, str, str, str, str, str]


def render_tree(run_log: RunLog) -> str:
    """The run's header (status, tag, start, duration, parameters) then one aligned line per step and branch."""
    summary = summarize(run_log)
    header = [
        shown(f"run {run_log.run_id}  {run_log.status}" + (f"  tag {run_log.tag}" if run_log.tag else "")),
        f"started {format_time(summary.start)}, took {format_duration(summary)}"
        + (f", resumed from {shown(run_log.original_run_id)}" if run_log.original_run_id else ""),
    ]
    rows: List[_Row] = []
    _rows(run_log, "", rows, run_log.run_id)
    if not rows:
        return "\n".join([*header, "", "no step recorded"]) + "\n"
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        lines.append(("  ".join(cells) + ("  " + row[5] if row[5] else "")).rstrip())
    return "\n".join([*header, "", *lines]) + "\n"


def _rows(log: Union[RunLog, BranchLog], indent: str, rows: List[_Row], run_id: str) -> None:
    """The steps of a run or branch, each followed by its branches; ``indent`` draws the tree's lines."""
    steps = list(log.steps.values())
    top = isinstance(log, RunLog)
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        branch_mark = "" if top else ("└─ " if last else "├─ ")
        rows.append(_step_row(step, indent + branch_mark, run_id))
        below = indent + ("" if top else ("   " if last else "│  "))
        for name, size in step.objects.items():
            rows.append((f"{below}  {shown(name)}", "object", "", describe_size(size), "", ""))
        branches = list(step.branches.values())
        for number, branch in enumerate(branches):
            final = number == len(branches) - 1
            label = shown(branch_label(step, branch))
            start, end = span(branch)
            took = describe_duration(end - start) if start and end else ""
            rows.append((f"{below}{'└─ ' if final else '├─ '}[{label}]", "branch", shown(branch.status), took, "", ""))
            _rows(branch, below + ("   " if final else "│  "), rows, run_id)


def describe_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``...: a size as people read it."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _step_row(step: StepLog, prefix: str, run_id: str) -> _Row:
    start, end = span(step)
    took = describe_duration(end - start) if start and end else ""
    attempts = len(step.attempts)
    tried = f"{attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    message = step.message.strip().splitlines()[0] if step.message.strip() else ""
    if step.mock:
        message = message or "reused (--use-cached)"
    if step.cache is not None and step.cache.reused_from is not None:
        origin = step.cache.reused_from
        why = shlex.join(["magnus", "runs", "why", run_id, step.internal_name])
        message = f"reused from run {origin.run_id}, step {origin.step} (why: {why})"
    return (f"{prefix}{shown(step.name)}", shown(step.step_type), shown(step.status), took, tried, shown(message))

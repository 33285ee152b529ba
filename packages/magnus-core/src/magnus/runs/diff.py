"""``magnus runs diff``: what changed between two runs.

Four things decide whether two runs should have given the same result, and are compared: the
parameters (as the runs ended), the code each step ran (git commit or image digest), the data
moved through the catalog (by content hash) and how each step ended. Equal parts are summed up in
one line; each difference is one line (``~`` changed, ``+`` only in the second run, ``-`` only in
the first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from magnus.datastore.listing import walk_steps
from magnus.datastore.models import CodeIdentity, RunLog
from magnus.terminal import for_terminal as shown

SECTIONS = ("run", "parameters", "code", "data catalog", "steps")


@dataclass(frozen=True)
class Change:
    """One difference: ``before`` is None when only the second run has it, ``after`` when only the first."""

    name: str
    before: Optional[str]
    after: Optional[str]

    @property
    def mark(self) -> str:
        return "+" if self.before is None else "-" if self.after is None else "~"


def diff_runs(first: RunLog, second: RunLog) -> Dict[str, List[Change]]:
    """The differences of each section (empty lists where the runs agree)."""
    return {
        "run": _compare(_run_fields(first), _run_fields(second)),
        "parameters": _compare(_values(first.parameters), _values(second.parameters)),
        "code": _code_changes(first, second),
        "data catalog": _compare(_catalog(first), _catalog(second)),
        "steps": _compare(_statuses(first), _statuses(second)),
    }


def render_diff(first: RunLog, second: RunLog) -> str:
    """The differences as lines, what users wrote in them shown through ``for_terminal``."""
    changes = diff_runs(first, second)
    lines = [f"--- {shown(first.run_id)}", f"+++ {shown(second.run_id)}"]
    same = [section for section in SECTIONS if not changes[section]]
    for section in SECTIONS:
        if not changes[section]:
            continue
        lines.append(f"{section}:")
        names = [shown(change.name) for change in changes[section]]
        width = max(len(name) for name in names)
        for name, change in zip(names, changes[section], strict=True):
            lines.append(f"  {change.mark} {name.ljust(width)}  {shown(_describe(change))}".rstrip())
    if same:
        lines.append(f"same: {', '.join(same)}")
    return "\n".join(lines) + "\n"


def _describe(change: Change) -> str:
    if change.before is None:
        return str(change.after)
    if change.after is None:
        return f"{change.before}  (not in the second run)"
    return f"{change.before} -> {change.after}"


def _compare(before: Mapping[str, str], after: Mapping[str, str]) -> List[Change]:
    """Changes between two flat maps, in the first run's order then the second's new names."""
    changes = [Change(name, value, after.get(name)) for name, value in before.items() if after.get(name) != value]
    changes += [Change(name, None, value) for name, value in after.items() if name not in before]
    return changes


def _run_fields(run_log: RunLog) -> Dict[str, str]:
    fields = {"status": run_log.status, "tag": run_log.tag or "-", "pipeline (dag hash)": run_log.dag_hash or "-"}
    if run_log.original_run_id:
        fields["resumed from"] = run_log.original_run_id
    return fields


def _values(parameters: Mapping[str, Any]) -> Dict[str, str]:
    return {name: _short(json.dumps(value, sort_keys=True, default=str)) for name, value in parameters.items()}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_code(identities: List[CodeIdentity]) -> str:
    described = []
    for identity in identities:
        text = f"{identity.code_identifier_type or 'code'} {identity.code_identifier or '?'}"
        if identity.code_identifier_type == "git" and not identity.code_identifier_dependable:
            text += " (uncommitted changes)"
        described.append(text)
    return ", ".join(described) or "-"


def _code_changes(first: RunLog, second: RunLog) -> List[Change]:
    """Code identities per step; a change shared by several steps is one line naming them."""
    before = {step.internal_name: describe_code(step.code_identities) for step in walk_steps(first) if step.attempts}
    after = {step.internal_name: describe_code(step.code_identities) for step in walk_steps(second) if step.attempts}
    grouped: Dict[Tuple[str, str], List[str]] = {}
    for name in before.keys() & after.keys():
        if before[name] != after[name]:
            grouped.setdefault((before[name], after[name]), []).append(name)
    common = len(before.keys() & after.keys())
    changes = []
    for (old, new), steps in grouped.items():
        where = "every step" if len(steps) == common else ", ".join(sorted(steps))
        changes.append(Change(f"code of {where}", old, new))
    return changes


def _catalog(run_log: RunLog) -> Dict[str, str]:
    entries = {}
    for step in walk_steps(run_log):
        for entry in step.data_catalog:
            entries[f"{entry.name} ({entry.stage} by {step.internal_name})"] = entry.data_hash[:12] or "-"
    return entries


def _statuses(run_log: RunLog) -> Dict[str, str]:
    """Each step's status; a composite's with its message (the branch a conditional took, why a loop ended)."""
    return {
        step.internal_name: f"{step.status}: {_short(step.message)}" if step.branches and step.message else step.status
        for step in walk_steps(run_log)
    }

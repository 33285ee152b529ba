"""Run-log parts as table rows, and rows back into magnus 0.5.1's nested run log.

A step row holds the step without its branches; its ``status`` and ``message`` are columns (so a
status update is one ``UPDATE``) and the rest is JSON in ``body``. A branch row holds the branch
without its steps. Rows name their parent part, so reassembly follows keys: rows come ordered by
``id`` (the order parts were first written), and each is attached to the part it names.

A row that does not decode (edited by hand, written by a broken client) raises
:class:`~magnus.datastore.decoding.Unreadable` naming the part, never showing its content.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from magnus.datastore.decoding import Unreadable, load_json, load_mapping, validated
from magnus.datastore.listing import RunSummary, summary_from_record
from magnus.datastore.models import BranchLog, RunLog, StepLog
from magnus_runlog_db.schema import BRANCH, STEP

# A row as SQLAlchemy returns it (RowMapping) or as tests build it.
Row = Mapping[Any, Any]

_STEP_COLUMNS = {"branches", "status", "message"}
_HEADER_FIELDS = ("dag_hash", "use_cached", "tag", "original_run_id", "status")


def step_row(step_log: StepLog, parent: str) -> Dict[str, Any]:
    body = json.dumps(step_log.model_dump(mode="json", exclude=_STEP_COLUMNS))
    return _part_row(STEP, step_log.internal_name, parent, step_log.status, step_log.message, body)


def branch_row(branch_log: BranchLog, parent: str) -> Dict[str, Any]:
    return _part_row(BRANCH, branch_log.internal_name, parent, branch_log.status, "", "{}")


def _part_row(kind: str, name: str, parent: str, status: str, message: str, body: str) -> Dict[str, Any]:
    return {"kind": kind, "internal_name": name, "parent": parent, "status": status, "message": message, "body": body}


def step_from(row: Row, name: str = "") -> StepLog:
    """The step of a row (``name``: its internal name, when the row has only the step's columns)."""
    what = f"the row of step '{name}'" if name else _part_name(row)
    data = load_mapping(row["body"], what)
    data["status"], data["message"] = row["status"], row["message"]
    return validated(StepLog, data, what)


def _part_name(row: Row) -> str:
    return f"the row of {row['kind']} '{row['internal_name']}'"


def branch_from(row: Row) -> BranchLog:
    return BranchLog(internal_name=row["internal_name"], status=row["status"])


def header_values(run_log: RunLog) -> Dict[str, Any]:
    return {name: getattr(run_log, name) for name in _HEADER_FIELDS}


def run_fields_from(row: Row) -> RunLog:
    """The run's own fields from its row (no parameters, config or steps)."""
    return validated(RunLog, {"run_id": row["run_id"], **{name: row[name] for name in _HEADER_FIELDS}}, "the run's row")


def run_log_from(row: Row, parameters: Iterable[Tuple[str, str]]) -> RunLog:
    run_log = run_fields_from(row)
    run_log.parameters = parameters_from(parameters)
    run_log.run_config = load_mapping(row["run_config"], "the run's row: run_config")
    return run_log


def parameters_from(rows: Iterable[Tuple[str, str]]) -> Dict[str, Any]:
    return {name: load_json(value, f"the row of parameter '{name}'") for name, value in rows}


def kept_summary(run_id: str, status: str, summary: Optional[str]) -> Optional[RunSummary]:
    """The summary kept in the run's row with its final status; None when there is none for its status."""
    if summary is None:
        return None
    try:
        kept = summary_from_record(json.loads(summary))
    except ValueError:
        return None
    return kept if kept is not None and (kept.run_id, kept.status) == (run_id, status) else None


def attempt_times(rows: Iterable[Row], prune_mock: bool) -> Iterator[Tuple[str, str]]:
    """``(start_time, end_time)`` of every attempt in the parts of one run, without building them.

    Follows parent keys as :func:`assemble` does (a part whose parent is not recorded is not in
    the run). ``prune_mock``: without the steps marked ``mock`` and what they hold.
    """
    steps_in: Dict[str, List[Row]] = {}  # by the branch holding them ('' for the run)
    branches_of: Dict[str, List[str]] = {}  # branch names by the step holding them
    for row in rows:
        if row["kind"] == STEP:
            steps_in.setdefault(row["parent"], []).append(row)
        else:
            branches_of.setdefault(row["parent"], []).append(row["internal_name"])
    pending = list(steps_in.get("", []))
    while pending:
        row = pending.pop()
        data = load_mapping(row["body"], _part_name(row))
        if prune_mock and data.get("mock") is True:
            continue
        yield from _attempts(data, _part_name(row))
        for branch in branches_of.get(row["internal_name"], []):
            pending.extend(steps_in.get(branch, []))


def _attempts(data: Dict[str, Any], what: str) -> List[Tuple[str, str]]:
    attempts = data.get("attempts", [])
    times = [
        (attempt.get("start_time", ""), attempt.get("end_time", "")) if isinstance(attempt, dict) else None
        for attempt in (attempts if isinstance(attempts, list) else [None])
    ]
    if not all(pair is not None and isinstance(pair[0], str) and isinstance(pair[1], str) for pair in times):
        raise Unreadable(f"{what}: attempts: not a list of attempts with their times")
    return [pair for pair in times if pair is not None]


def assemble(rows: Sequence[Row], top: Optional[RunLog] = None) -> Dict[Tuple[str, str], Any]:
    """Build every part of ``rows`` (ordered by ``id``) and attach each to its parent.

    ``top``: the run log whose steps receive the rows of parent ``''``. Returns the parts by
    ``(kind, internal_name)``; a part whose parent is not among the rows (the root of a subtree)
    stays unattached.
    """
    parts: Dict[Tuple[str, str], Any] = {}
    for row in rows:
        kind, name = row["kind"], row["internal_name"]
        parts[(kind, name)] = step_from(row) if kind == STEP else branch_from(row)
    for row in rows:
        kind, name, parent = row["kind"], row["internal_name"], row["parent"]
        part = parts[(kind, name)]
        if kind == STEP:
            if parent == "" and isinstance(top, RunLog):
                top.steps[name] = part
            else:
                holder = parts.get((BRANCH, parent))
                if holder is not None:
                    holder.steps[name] = part
        else:
            holder = parts.get((STEP, parent))
            if holder is not None:
                holder.branches[name] = part
    return parts


def parts_of_step(step_log: StepLog, parent: str) -> List[Dict[str, Any]]:
    """Rows of a step and everything it carries (its branches and their steps), parents first."""
    rows = [step_row(step_log, parent)]
    for branch in step_log.branches.values():
        rows.extend(parts_of_branch(branch, step_log.internal_name))
    return rows


def parts_of_branch(branch_log: BranchLog, parent: str) -> List[Dict[str, Any]]:
    rows = [branch_row(branch_log, parent)]
    for step in branch_log.steps.values():
        rows.extend(parts_of_step(step, branch_log.internal_name))
    return rows

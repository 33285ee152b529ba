"""``magnus lineage PATH``: where a file came from, step by step, down to the files no step made.

A catalog file is named by its path (as a step put it) and known by its content hash. The step
that put it is found in the run asked for (``--run``), else through the store's index of which
steps put that content ([`producers`][magnus.datastore.base.BaseRunLogStore.producers]): the
earliest execution that put it. For that step the tree shows the run, the code version (the
run's commit and the hash of each file of code), the parameters its last attempt received (as
recorded: secrets masked), and then, for every catalog file the step got, the same again,
until a file that no step put (an input of the project) ends the branch. A step reused from an
earlier execution (``--cache``) is followed to the execution it came from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.listing import RunQuery, walk_steps
from magnus.datastore.models import DataCatalog, RunLog, StepLog
from magnus.errors import RunLogError, UserInputError
from magnus.terminal import for_terminal as shown

# How many runs (newest first) are searched for a path when no --run is given and no local file has it.
RUNS_SEARCHED = 200
_SHORT = 12


@dataclass
class Producer:
    """The step that put a file: its run and step, when it ended, its code and parameters, the files it got."""

    run_id: str
    step: str
    time: str
    commit: str = ""
    code: Dict[str, str] = field(default_factory=dict)
    parameters: Dict[str, Any] = field(default_factory=dict)
    reused_in: List[str] = field(default_factory=list)
    inputs: List["FileLineage"] = field(default_factory=list)


@dataclass
class FileLineage:
    """A file by path and content hash, and the step that put it (None: no step did, an input)."""

    path: str
    data_hash: str
    producer: Optional[Producer] = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=repr)


def lineage(store: BaseRunLogStore, path: str, run_id: str = "") -> FileLineage:
    """The lineage of the file ``path``: put by ``run_id`` when given, else the content of the file here
    (when there is one), else the newest run that put a file of that path.

    Raises:
        UserInputError: no run of the store put a file of that path (in ``run_id``, when given).
    """
    entry, run = _entry(store, path, run_id)
    return _follow(store, entry.name, entry.data_hash, run, {}, set())


def _entry(store: BaseRunLogStore, path: str, run_id: str) -> tuple[DataCatalog, str]:
    """The put entry the lineage starts from, and the run to look for its step in first ('': any)."""
    if run_id:
        from magnus.runs.store import read_run

        found = _put_in(read_run(store, run_id), path)
        if found is None:
            raise UserInputError(f"run '{run_id}' put no file '{path}' in the catalog")
        return found, run_id
    local = Path(path)
    if local.is_file():
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        if store.producers(digest):
            return DataCatalog(name=path, data_hash=digest), ""
    for summary in store.list_runs(RunQuery(limit=RUNS_SEARCHED)).runs:
        try:
            found = _put_in(store.get_run_log_by_id(summary.run_id), path)
        except RunLogError:
            continue
        if found is not None:
            return found, summary.run_id
    raise UserInputError(f"no run of run_log_store '{store.service_name}' put a file '{path}' (nor its content)")


def _put_in(run_log: RunLog, path: str) -> Optional[DataCatalog]:
    """The last entry putting ``path`` in ``run_log``."""
    found = None
    for step in walk_steps(run_log):
        for entry in step.data_catalog:
            if entry.stage == "put" and entry.name == path:
                found = entry
    return found


def _follow(
    store: BaseRunLogStore, path: str, digest: str, run_id: str, logs: Dict[str, RunLog], seen: Set[str]
) -> FileLineage:
    """The lineage of content ``digest`` (named ``path``), looked for in ``run_id`` first."""
    node = FileLineage(path=path, data_hash=digest)
    if digest in seen:  # a step reading what it (or a later step) put: shown once
        return node
    seen.add(digest)
    located = _step_putting(_log(store, run_id, logs), path, digest) if run_id else None
    if located is None:
        producers = store.producers(digest)
        if not producers:
            return node
        first = producers[0]
        located = _find(_log(store, first.run_id, logs), first.step)
    if located is None:
        return node
    run_log, step = located
    reused_in: List[str] = []
    while step.cache is not None and step.cache.reused_from is not None:  # to the execution it came from
        reused_in.append(f"{run_log.run_id}/{step.internal_name}")
        origin = step.cache.reused_from
        found = _find(_log(store, origin.run_id, logs), origin.step)
        if found is None:
            break
        run_log, step = found
    producer = _producer(run_log, step)
    producer.reused_in = reused_in
    node.producer = producer
    for entry in step.data_catalog:
        if entry.stage == "get" and entry.data_hash:
            producer.inputs.append(_follow(store, entry.name, entry.data_hash, run_log.run_id, logs, seen))
    return node


def _producer(run_log: RunLog, step: StepLog) -> Producer:
    commit = step.code_identities[0].code_identifier if step.code_identities else ""
    code = dict(step.cache.components.get("code", {})) if step.cache else {}
    return Producer(
        run_id=run_log.run_id,
        step=step.internal_name,
        time=step.attempts[-1].end_time if step.attempts else "",
        commit=commit or "",
        code=code,
        parameters=dict(step.attempts[-1].parameters) if step.attempts else {},
    )


def _log(store: BaseRunLogStore, run_id: str, logs: Dict[str, RunLog]) -> Optional[RunLog]:
    if run_id not in logs:
        try:
            logs[run_id] = store.get_run_log_by_id(run_id)
        except RunLogError:
            return None
    return logs[run_id]


def _step_putting(run_log: Optional[RunLog], path: str, digest: str) -> Optional[tuple[RunLog, StepLog]]:
    """The step of ``run_log`` that put ``path`` with content ``digest`` (the last one)."""
    if run_log is None:
        return None
    found = None
    for step in walk_steps(run_log):
        if any(e.stage == "put" and e.name == path and e.data_hash == digest for e in step.data_catalog):
            found = step
    return (run_log, found) if found is not None else None


def _find(run_log: Optional[RunLog], internal_name: str) -> Optional[tuple[RunLog, StepLog]]:
    if run_log is None:
        return None
    for step in walk_steps(run_log):
        if step.internal_name == internal_name:
            return run_log, step
    return None


def render(tree: FileLineage) -> str:
    """The lineage as an indented tree for a terminal."""
    lines: List[str] = []
    _render(tree, "", lines)
    return "\n".join(shown(line) for line in lines) + "\n"


def _render(node: FileLineage, indent: str, lines: List[str]) -> None:
    lines.append(f"{indent}{node.path}  {node.data_hash[:_SHORT]}")
    producer = node.producer
    if producer is None:
        lines.append(f"{indent}  put by no step (an input)")
        return
    reused = f" (reused in {', '.join(producer.reused_in)})" if producer.reused_in else ""
    lines.append(f"{indent}  put by run {producer.run_id}, step {producer.step} at {producer.time}{reused}")
    code = ", ".join(f"{name} {digest[:_SHORT]}" for name, digest in producer.code.items())
    commit = f"commit {producer.commit[:_SHORT]}; " if producer.commit else ""
    lines.append(f"{indent}  code: {commit}{code or 'unknown'}")
    if producer.parameters:
        shown_parameters = ", ".join(
            f"{name}={json.dumps(value, default=repr)}" for name, value in producer.parameters.items()
        )
        lines.append(f"{indent}  parameters: {shown_parameters}")
    for child in producer.inputs:
        _render(child, indent + "  ", lines)


def mermaid(tree: FileLineage) -> str:
    """The lineage as a Mermaid flowchart (files and the steps that put them), for the HTML report."""
    lines = ["flowchart BT"]
    ids: Dict[str, str] = {}

    def node_id(key: str) -> str:
        return ids.setdefault(key, f"n{len(ids)}")

    def walk(node: FileLineage) -> str:
        file_id = node_id(f"file:{node.path}:{node.data_hash}")
        lines.append(f'  {file_id}["{_label(node.path)}"]')
        if node.producer is not None:
            step_id = node_id(f"step:{node.producer.run_id}:{node.producer.step}")
            lines.append(f'  {step_id}(["{_label(node.producer.run_id)} / {_label(node.producer.step)}"])')
            lines.append(f"  {step_id} --> {file_id}")
            for child in node.producer.inputs:
                lines.append(f"  {walk(child)} --> {step_id}")
        return file_id

    walk(tree)
    return "\n".join(dict.fromkeys(lines)) + "\n"


def _label(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")

"""The index of executed steps: which successful step has a cache key, which steps put a file's content.

``--cache`` asks "has any earlier run executed a step with this key?" and ``magnus lineage``
asks "which step put this content?". Reading every run log to answer would make each step cost
more as runs accumulate, so stores keep an index as they record steps:

- a database keeps it in a table;
- stores of files keep small index objects beside the run logs, one per entry, each written
  whole (atomic, no read-modify-write, so processes recording steps at once never lose one):
  ``.index/key/<key>.json`` (the last execution recorded with that key) and
  ``.index/put/<hash>/<run and step>.json`` (every step that put that content).

This module holds what stores of files share ([`FileIndex`][]) and the entries a step makes
([`entries_of`][]); a store that keeps no index answers by scanning its runs ([`scan_runs`][]).
Keys and hashes are checked to be hex digests before they name a file.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, Dict, Iterator, List, Optional, Protocol, Tuple

from magnus import defaults
from magnus.datastore.models import RunLog, StepLog, StepReference

INDEX_FOLDER = ".index"
_DIGEST = re.compile(r"^[0-9a-f]{16,128}$")


def is_digest(value: str) -> bool:
    """Whether ``value`` is a hex digest (what may name an index file)."""
    return bool(_DIGEST.match(value or ""))


def executed(step_log: StepLog) -> bool:
    """Whether ``step_log`` is a success that ran its command (not reused, not mocked): what the index names."""
    cache = step_log.cache
    return step_log.status == defaults.SUCCESS and not step_log.mock and cache is not None and not cache.reused_from


def put_hashes(step_log: StepLog) -> List[str]:
    """The content hashes of the data ``step_log`` put in the catalog (itself, not its branches).

    Its execution log is no data: no file of the project holds it to ask its lineage, and the logs
    of a map's items, alike, would make one index entry each under one hash.
    """
    return sorted(
        {
            entry.data_hash
            for entry in step_log.data_catalog
            if entry.stage == "put" and is_digest(entry.data_hash) and not _execution_log(entry.name)
        }
    )


def _execution_log(name: str) -> bool:
    """Whether a catalog entry named ``name`` is a step's execution log (``<step>.execution.log[_<item>]``)."""
    stem, found, rest = name.rpartition(defaults.EXECUTION_LOG_SUFFIX)
    return bool(found and stem) and (not rest or rest.startswith("_"))


def reference_of(run_id: str, step_log: StepLog) -> StepReference:
    """The reference naming ``step_log`` of ``run_id``, with when its last attempt ended."""
    ended = step_log.attempts[-1].end_time if step_log.attempts else ""
    return StepReference(run_id=run_id, step=step_log.internal_name, time=ended)


def entries_of(run_id: str, step_log: StepLog) -> List[Tuple[str, bytes]]:
    """The index files a recorded step makes, as (path under the index's folder, content)."""
    if not executed(step_log):
        return []
    assert step_log.cache is not None
    reference = reference_of(run_id, step_log)
    content = reference.model_dump_json().encode()
    entries = []
    if is_digest(step_log.cache.key):
        entries.append((f"{INDEX_FOLDER}/key/{step_log.cache.key}.json", content))
    naming = hashlib.sha256(f"{run_id}\0{step_log.internal_name}".encode()).hexdigest()[:32]
    entries.extend((f"{INDEX_FOLDER}/put/{digest}/{naming}.json", content) for digest in put_hashes(step_log))
    return entries


def decoded(content: Optional[bytes]) -> Optional[StepReference]:
    """An index file's reference; None when absent or unreadable (an index entry is a hint, checked on use)."""
    if content is None:
        return None
    try:
        return StepReference.model_validate(json.loads(content))
    except ValueError:
        return None


class FileIndex(Protocol):
    """What a store of files gives the index: whole-file writes and reads, and a folder's file names.

    ``write_index`` with ``replace`` false may leave a file that exists as it is (what it names is
    as good a hit): a step of every run then costs a look, not a rewrite.
    """

    def write_index(self, path: str, content: bytes, replace: bool) -> None: ...

    def read_index(self, path: str) -> Optional[bytes]: ...

    def list_index(self, folder: str) -> List[str]: ...


def record(files: FileIndex, run_id: str, step_log: StepLog) -> None:
    """Write the index files of a recorded step (none for a step that did not execute successfully).

    An entry of its key already there is replaced only when the step looked for it and missed
    (``cache.enabled``): the execution it named is gone or failed, and this one takes its place.
    """
    replace = step_log.cache is not None and step_log.cache.enabled
    for path, content in entries_of(run_id, step_log):
        files.write_index(path, content, replace)


def cached(files: FileIndex, key: str) -> Optional[StepReference]:
    """The last successful execution recorded with ``key``."""
    if not is_digest(key):
        return None
    return decoded(files.read_index(f"{INDEX_FOLDER}/key/{key}.json"))


def producers(files: FileIndex, data_hash: str) -> List[StepReference]:
    """Every successful execution recorded as putting content ``data_hash``, earliest first."""
    if not is_digest(data_hash):
        return []
    folder = f"{INDEX_FOLDER}/put/{data_hash}"
    found = [decoded(files.read_index(f"{folder}/{name}")) for name in sorted(files.list_index(folder))]
    return sorted((reference for reference in found if reference is not None), key=lambda ref: ref.time)


# ---- without an index: the runs themselves ----------------------------------------------------
def _steps(steps: Dict[str, StepLog]) -> Iterator[StepLog]:
    for step in steps.values():
        yield step
        for branch in step.branches.values():
            yield from _steps(branch.steps)


class RunsHolder(Protocol):
    """What scanning runs reads of a run log store (any store: this module is below the stores)."""

    def run_ids(self) -> List[str]: ...

    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog: ...


def scan_runs(store: RunsHolder, wanted: Callable[[StepLog], bool]) -> List[StepReference]:
    """Every executed step of every run of ``store`` that ``wanted`` accepts, earliest first: what a store
    without an index answers from (a run log that does not read back is passed over)."""
    from magnus.errors import ConfigurationError, RunLogError

    try:
        run_ids = store.run_ids()
    except ConfigurationError:
        return []
    found: List[StepReference] = []
    for run_id in run_ids:
        try:
            run_log = store.get_run_log_by_id(run_id)
        except RunLogError:
            continue
        found.extend(reference_of(run_id, step) for step in _steps(run_log.steps) if executed(step) and wanted(step))
    return sorted(found, key=lambda ref: ref.time)

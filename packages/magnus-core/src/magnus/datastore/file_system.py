"""Run logs as one JSON file per run, the layout of magnus 0.5.1: ``<log_folder>/<run_id>.json``.

Rewriting a whole JSON file for every step makes each step cost more than the one before. This
store instead appends each change (a step log, a branch log, parameters, status) as one line to
``<run_id>.journal`` and folds the journal into ``<run_id>.json`` (atomically) when the run ends.
Readers merge the two, so a run that crashed mid-way is still complete up to its last step and
``--use-cached`` can resume from it; a partial last line left by a crash is ignored. A file or a
complete line that does not read back is refused, naming the run (``RunLogUnreadableError``).

Listing runs reads ``<run_id>.summary``, a few lines written with each whole log (the run's
status, tag, start and end, and which version of ``<run_id>.json`` they summarise), instead of
the log: a run's JSON may be hundreds of MB. A summary that does not match the JSON beside it
(steps journalled since, a run written by magnus 0.5.1) is not used: the log is read instead.

Every file it reads or writes lies in ``log_folder`` (run ids are checked, symlinks resolved), and
creating a run log claims its id atomically: of two processes started with the same run id, one
runs and the other gets :class:`~magnus.errors.RunLogExistsError`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Set, Tuple

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.atomic import append_record, create_atomically, write_atomically
from magnus.datastore import index
from magnus.datastore.base import BaseRunLogStore, _branch_holder, _place_branch, _place_step, _step_holder
from magnus.datastore.decoding import Unreadable, load_mapping, load_run_log, mapping, validated
from magnus.datastore.models import BranchLog, RunLog, StepLog, StepReference
from magnus.errors import (
    BranchLogNotFoundError,
    RunLogError,
    RunLogExistsError,
    RunLogNotFoundError,
    RunLogUnreadableError,
    StepLogNotFoundError,
    UserInputError,
)
from magnus.names import is_inside, path_name_problem, usable_folder

if TYPE_CHECKING:
    from magnus.datastore.listing import RunQuery, RunSummary

FINAL_STATUSES = (defaults.SUCCESS, defaults.FAIL)
_ENDINGS = (".json", ".journal", ".summary")
logger = logging.getLogger(defaults.LOGGER_NAME)


@dataclass
class _Loaded:
    """A run log as read so far, and how far (bytes, lines) into its journal we have read."""

    run_log: RunLog
    journal_offset: int
    snapshot_stamp: tuple[int, int]
    journal_lines: int = 0


class FileSystemRunLogStore(BaseRunLogStore):
    """One JSON file per run in ``log_folder``, plus an append-only journal while it runs."""

    service_name: ClassVar[str] = "file-system"

    log_folder: str = Field(default=defaults.LOG_FOLDER, description="Folder of <run_id>.json files.")

    def local_paths(self) -> List[str]:
        return [self.log_folder]

    def location(self, run_id: str) -> str:
        return str(Path(self.log_folder) / f"{run_id}.json")

    _loaded: Dict[str, _Loaded] = PrivateAttr(default_factory=dict)
    _confined: Set[str] = PrivateAttr(default_factory=set)

    # ---- paths ---------------------------------------------------------------------------------
    def snapshot_path(self, run_id: str) -> Path:
        return self._path(run_id, ".json")

    def journal_path(self, run_id: str) -> Path:
        return self._path(run_id, ".journal")

    def summary_path(self, run_id: str) -> Path:
        return self._path(run_id, ".summary")

    def _path(self, run_id: str, suffix: str) -> Path:
        """A file of the run in ``log_folder``; the run id and symlinks are checked once per process.

        Raises:
            UserInputError: the run id is not a safe file name.
            RunLogError: a symlink leads the run's files out of ``log_folder``.
        """
        known = self._paths.get((run_id, suffix))
        if known is not None:  # every step asks several times: a Path costs more than the look-up
            return known
        folder = Path(self.log_folder)
        if run_id not in self._confined:
            problem = path_name_problem(run_id)
            if problem:
                raise UserInputError(f"run id {run_id!r} {problem}")
            for ending in _ENDINGS:
                if not is_inside(folder / f"{run_id}{ending}", folder):
                    raise RunLogError(f"'{folder / run_id}{ending}' leads outside {folder} (a symlink); refused")
            self._confined.add(run_id)
        path = self._paths[(run_id, suffix)] = folder / f"{run_id}{suffix}"
        return path

    @functools.cached_property
    def _paths(self) -> Dict[Tuple[str, str], Path]:
        return {}

    # ---- the index of executed steps: small files under <log_folder>/.index ----------------------
    def index_step(self, run_id: str, step_log: StepLog) -> None:
        index.record(self, run_id, step_log)

    def cached_execution(self, key: str) -> Optional[StepReference]:
        return index.cached(self, key)

    def producers(self, data_hash: str) -> List[StepReference]:
        return index.producers(self, data_hash)

    def _index_path(self, relative: str) -> Path:
        """A file of the index, refused when a symlink would lead it out of ``log_folder``: its nearest
        folder that exists must resolve inside (folders made below it are inside too)."""
        path = Path(self.log_folder) / relative
        if str(path.parent) in self._index_folders:  # checked, and made, once per process
            return path
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not is_inside(existing, self.log_folder):
            raise RunLogError(f"'{path}' leads outside {self.log_folder} (a symlink); refused")
        return path

    @functools.cached_property
    def _index_folders(self) -> Set[str]:
        """Folders of the index this process checked inside ``log_folder`` and made."""
        return set()

    def write_index(self, path: str, content: bytes, replace: bool) -> None:
        target = self._index_path(path)
        if not replace and target.is_file():
            return
        if str(target.parent) not in self._index_folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not is_inside(target.parent, self.log_folder):  # made through a link planted meanwhile
                raise RunLogError(f"'{target}' leads outside {self.log_folder} (a symlink); refused")
            self._index_folders.add(str(target.parent))
        write_atomically(target, content, durable=False)

    def read_index(self, path: str) -> Optional[bytes]:
        try:
            return self._index_path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list_index(self, folder: str) -> List[str]:
        try:
            return [
                entry.name for entry in os.scandir(self._index_path(folder)) if entry.is_file(follow_symlinks=False)
            ]
        except (FileNotFoundError, NotADirectoryError):
            return []

    # ---- whole-log methods ---------------------------------------------------------------------
    def claim_run_log(self, run_log: RunLog) -> None:
        """Claim the run id by creating its JSON file exclusively: one creator wins, the others raise.

        Raises:
            RunLogExistsError: the run id is taken (by an earlier run or a concurrent creator).
            ConfigurationError: ``log_folder`` is a file, cannot be created or is not writable.
        """
        usable_folder(self.log_folder, "run_log_store.config.log_folder")
        path = self.snapshot_path(run_log.run_id)
        try:
            create_atomically(path, run_log.model_dump_json(indent=4).encode())
        except FileExistsError:
            raise RunLogExistsError(run_log.run_id) from None
        self.journal_path(run_log.run_id).unlink(missing_ok=True)  # left by a crashed run that had no snapshot
        self._loaded[run_log.run_id] = _Loaded(run_log, 0, _stamp(path))

    def run_log_exists(self, run_id: str) -> bool:
        return self.snapshot_path(run_id).exists()

    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog:
        return self._refresh(run_id).run_log

    def run_ids(self) -> List[str]:
        """The ``<run_id>.json`` files of ``log_folder`` (none when it does not exist yet).

        A file whose name is no run id, or a symlink leading outside ``log_folder``, is not a run.
        """
        try:
            entries = os.scandir(self.log_folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        with entries:
            found = [entry for entry in entries if entry.name.endswith(".json")]
        names = [
            entry.name[: -len(".json")]
            for entry in found
            if not entry.is_symlink() or is_inside(entry.path, self.log_folder)
        ]
        return [name for name in names if not path_name_problem(name)]

    def put_run_log(self, run_log: RunLog) -> None:
        """Write the whole log as the run's JSON file, fold the journal away, then write its summary."""
        path = self.snapshot_path(run_log.run_id)
        write_atomically(path, run_log.model_dump_json(indent=4).encode())
        self.journal_path(run_log.run_id).unlink(missing_ok=True)
        self._loaded[run_log.run_id] = _Loaded(run_log, 0, _stamp(path))
        self._write_summary(run_log, path)

    # ---- listing: a summary per run -----------------------------------------------------------
    def run_summary(self, run_id: str, query: "RunQuery") -> Optional["RunSummary"]:
        """The run's summary file when it matches the JSON beside it and nothing was journalled since;
        else the log, read without keeping it (a listing holds one log at a time). A file of the run
        planted as a link out of ``log_folder`` refuses this run only, as unreadable."""
        from magnus.datastore.listing import summarize

        try:
            self.snapshot_path(run_id)  # checks every file of the run (once per process)
        except RunLogError as exc:
            raise RunLogUnreadableError(run_id, self.location(run_id), str(exc)) from None
        kept = self._kept_summary(run_id)
        if kept is not None:
            return kept
        held = run_id in self._loaded
        try:
            return summarize(self.get_run_log_by_id(run_id))
        finally:
            if not held:
                self._loaded.pop(run_id, None)

    def _write_summary(self, run_log: RunLog, snapshot: Path) -> None:
        from magnus.datastore.listing import summarize, summary_record

        record = {"summary": summary_record(summarize(run_log)), "snapshot": _version(snapshot)}
        write_atomically(self.summary_path(run_log.run_id), json.dumps(record).encode(), durable=False)

    def _kept_summary(self, run_id: str) -> Optional["RunSummary"]:
        """The kept summary of ``run_id``, or None when there is none for its log as it is now."""
        from magnus.datastore.listing import summary_from_record

        try:
            version = _version(self.snapshot_path(run_id))
        except (FileNotFoundError, NotADirectoryError):
            raise RunLogNotFoundError(run_id) from None
        try:
            record = json.loads(self.summary_path(run_id).read_bytes())
        except (OSError, ValueError):  # none yet (a run written by magnus 0.5.1), or cut short
            return None
        if not isinstance(record, dict) or record.get("snapshot") != version or _size(self.journal_path(run_id)):
            return None
        summary = summary_from_record(record.get("summary"))
        return summary if summary is not None and summary.run_id == run_id else None

    # ---- fine-grained writes: one journal line each ------------------------------------------
    def update_run_log_status(self, run_id: str, status: str) -> None:
        if status in FINAL_STATUSES:
            run_log = self.get_run_log_by_id(run_id)
            run_log.status = status
            self.put_run_log(run_log)
            return
        self._journal(run_id, "status", status)

    def set_parameters(self, run_id: str, parameters: Dict[str, Any]) -> None:
        self._journal(run_id, "parameters", parameters)

    def set_run_config(self, run_id: str, run_config: Dict[str, Any]) -> None:
        self._journal(run_id, "run_config", run_config)

    def add_step_log(self, run_id: str, step_log: StepLog) -> None:
        self._journal(run_id, "step", step_log)

    def add_branch_log(self, run_id: str, branch_log: BranchLog) -> None:
        self._journal(run_id, "branch", branch_log)

    # ---- journal mechanics --------------------------------------------------------------------
    def _journal(self, run_id: str, op: str, value: Any) -> None:
        """Append one change; apply it to our copy too when nobody else wrote in between.

        A step or branch with nowhere to go (its branch or step was never recorded) is refused before
        anything is written, so one bad write cannot leave a log that no longer reads.
        """
        loaded = self._refresh(run_id)
        if op == "step":
            _step_holder(loaded.run_log, value.internal_name)
        elif op == "branch":
            _branch_holder(loaded.run_log, value.internal_name)
        payload = value.model_dump_json() if hasattr(value, "model_dump_json") else json.dumps(value)
        line = f'{{"op":"{op}","value":{payload}}}\n'.encode()
        path = self.journal_path(run_id)
        append_record(path, line)
        if _size(path) == loaded.journal_offset + len(line):
            _apply(loaded.run_log, op, value)
            loaded.journal_offset += len(line)

    def _refresh(self, run_id: str) -> _Loaded:
        """Our copy of the run log, brought up to date with what any writer appended since.

        Raises:
            RunLogNotFoundError: the run has no JSON file.
            RunLogUnreadableError: its JSON file or a complete line of its journal does not read back.
        """
        with self.reading(run_id):
            try:
                return self._read_into(run_id, self._loaded.get(run_id))
            except Unreadable:
                self._loaded.pop(run_id, None)  # a half-applied journal is not ours to keep
                raise

    def _read_into(self, run_id: str, loaded: Optional[_Loaded]) -> _Loaded:
        snapshot = self.snapshot_path(run_id)
        try:
            stamp = _stamp(snapshot)
        except (FileNotFoundError, NotADirectoryError):  # no such file, or log_folder is a file
            raise RunLogNotFoundError(run_id) from None
        if loaded is None or loaded.snapshot_stamp != stamp:
            loaded = _Loaded(_read_snapshot(snapshot, run_id), 0, stamp)
            self._loaded[run_id] = loaded
        journal = self.journal_path(run_id)
        if _size(journal) > loaded.journal_offset:
            try:
                with open(journal, "rb") as handle:
                    handle.seek(loaded.journal_offset)
                    chunk = handle.read()
            except OSError as exc:
                raise Unreadable(f"{journal.name}: cannot be read: {exc.strerror}") from None
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a torn last line is not ours to read yet
            for raw in complete.splitlines():
                loaded.journal_lines += 1
                what = f"{journal.name} line {loaded.journal_lines}"
                record = load_mapping(raw, what)
                try:
                    _apply(loaded.run_log, record.get("op"), record.get("value"), what)
                except (BranchLogNotFoundError, StepLogNotFoundError) as exc:  # written by an older magnus
                    logger.warning("run %s: %s left out: %s", run_id, what, exc)
            loaded.journal_offset += len(complete)
        return loaded


def _read_snapshot(path: Path, run_id: str) -> RunLog:
    """The run's JSON file as a run log.

    Raises:
        RunLogNotFoundError: it is not there.
        Unreadable: it cannot be read, or is not a run log.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunLogNotFoundError(run_id) from None
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror}") from None
    return load_run_log(raw)


def _apply(run_log: RunLog, op: Any, value: Any, what: str = "") -> None:
    """Apply one journal record to a run log (``value`` as this process wrote it, or as read back).

    Raises:
        Unreadable: a record read back is not a change this store writes.
    """
    if op == "step":
        _place_step(run_log, value if isinstance(value, StepLog) else validated(StepLog, value, what))
    elif op == "branch":
        _place_branch(run_log, value if isinstance(value, BranchLog) else validated(BranchLog, value, what))
    elif op == "parameters":
        run_log.parameters.update(mapping(value, what))
    elif op == "run_config":
        run_log.run_config.update(mapping(value, what))
    elif op == "status" and isinstance(value, str):
        run_log.status = value
    else:
        raise Unreadable(f"{what}: not a change of a run log")


def _stamp(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def _version(path: Path) -> List[int]:
    """What tells one write of a file from another without reading it (as JSON keeps it)."""
    stat = os.stat(path)
    return [stat.st_ino, stat.st_mtime_ns, stat.st_size]


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0

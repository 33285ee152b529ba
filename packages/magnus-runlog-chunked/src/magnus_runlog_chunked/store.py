"""``run_log_store: {type: chunked-fs, config: {log_folder: .run_log_store}}``.

One folder per run and one small file per run-log part (see :mod:`magnus_runlog_chunked.layout`).
Every file is written atomically (temp file and rename; on an object store one whole object per
part), and no two writers of one run write the same file unless they update the same part, so
processes running map iterations or parallel branches on different machines can write at once,
without locks, and lose nothing. Recording a step writes that step's file only: its cost does not
grow with the size of the run.

``log_folder`` is a local folder (or ``file://``), or the URL of an object store folder
(``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``) reached through fsspec, installed
with the package's ``[s3]``/``[gcs]``/``[azure]`` extra and imported only when such a store is
used (see :mod:`magnus_runlog_chunked.storage` for what each kind of storage promises).

Confinement: every file lies in ``<log_folder>/<run_id>/`` (the run id is checked and the run's
folder resolved, symlinks included, inside ``log_folder``; part names are encoded so that no map
value or step name names another folder). Creating a run log claims the run id atomically: of two
processes started with the same run id, one runs and the other gets ``RunLogExistsError``.

Reading back: a part that does not decode (a file cut short or edited, a symlink planted in the
run's folder) refuses the run in one line naming it and its folder
(:class:`~magnus.errors.RunLogUnreadableError`), never showing the part's content. Only an empty
part reads as not recorded: what a power loss leaves of a step written without ``durable_steps``.

Listing: the run's own file keeps a summary of the run (status, tag, first start, last end),
written with its final status; ``magnus runs list`` reads that file alone. A run without one
(running, or written by an older version) is summarised from its step files, without building
its steps.

Durability (local folders): a process crash loses nothing (every write is a rename). The run's own file, its
config and its parameters are fsynced before the rename, so they also survive a power loss; step
and branch files are fsynced only with ``durable_steps`` (a disk flush per step costs more than the
rest of a no-op step on a VM disk). Without it a power loss may leave the last steps' files empty:
they read as not recorded, and ``--use-cached`` runs them again. On an object store a write is
durable once the store acknowledged it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.credentials import redacted_options, redacted_url
from magnus.datastore import index
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.decoding import Unreadable, load_json, mapping, validated
from magnus.datastore.models import BranchLog, RunLog, StepLog, StepReference
from magnus.errors import (
    BranchLogNotFoundError,
    RunLogError,
    RunLogExistsError,
    RunLogNotFoundError,
    StepLogNotFoundError,
    UserInputError,
)
from magnus.names import path_name_problem
from magnus.object_store import StoreFolder, local_folder, protocol, url_reach
from magnus.reach import Reach
from magnus_runlog_chunked import layout
from magnus_runlog_chunked.recent import Recent
from magnus_runlog_chunked.storage import LocalFiles, ObjectFiles, Storage

if TYPE_CHECKING:
    from magnus.datastore.listing import RunQuery, RunSummary

logger = logging.getLogger(defaults.LOGGER_NAME)

_HEADER_EXCLUDES = {"steps", "parameters", "run_config"}
_FINAL = (defaults.SUCCESS, defaults.FAIL)
_FIELD = "run_log_store.config.log_folder"
# What a part left by a power loss holds: nothing, or zeros (whitespace is what JSON allows around a value).
_NOTHING_WRITTEN = b"\x00 \t\r\n"
# How many parts (steps, branches) a store remembers where and how they were written.
PART_MEMORY = 10_000


class ChunkedFileSystemRunLogStore(BaseRunLogStore):
    """Run logs as folders of small files; reading a run reassembles magnus 0.5.1's JSON."""

    service_name: ClassVar[str] = "chunked-fs"

    log_folder: str = Field(
        default=defaults.LOG_FOLDER,
        description="Folder of the runs, one sub-folder per run id: a local path, or a URL "
        "(s3://bucket/prefix, gs://..., az://..., file:///path, memory://...).",
    )
    storage_options: Dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the fsspec file system of a URL log_folder; ${name} is the secret 'name'.",
    )
    durable_steps: bool = Field(
        default=False,
        description="fsync the file of each step that ended: it survives a power loss, for a disk flush per step.",
    )

    _secret: Optional[Callable[[str], str]] = PrivateAttr(default=None)

    def reach(self) -> Reach:
        """A local folder: this machine; an object store: any host (fsspec's ``memory://``: this process)."""
        return url_reach(self.log_folder)

    def local_paths(self) -> List[str]:
        """The local folder of the runs; none when they are in an object store."""
        folder = local_folder(self.log_folder)
        return [folder] if folder is not None else []

    def resolve_secrets(self, secret: Callable[[str], str]) -> None:
        """Keep the secrets backend's look-up for ``${name}`` in ``storage_options`` (an object store's)."""
        self._secret = secret
        self.__dict__.pop("_storage", None)
        self.__dict__.pop("_root", None)
        self.__dict__.pop("_index_folder", None)
        storage = self._storage
        if isinstance(storage, ObjectFiles):
            storage.folder.open()  # a missing secret, backend or bad option stops the run before it starts

    def get_summary(self) -> Dict[str, Any]:
        summary = super().get_summary()
        summary["log_folder"] = redacted_url(self.log_folder)
        summary["storage_options"] = redacted_options(self.storage_options)
        return summary

    def location(self, run_id: str) -> str:
        """The run's folder (``<log_folder>/<run_id>``), a local path or the store's URL (a password as ``***``)."""
        return f"{redacted_url(self.log_folder).rstrip('/')}/{run_id}"

    @functools.cached_property
    def _root(self) -> str:
        """The local folder of the runs, or the URL of their store."""
        folder = local_folder(self.log_folder)
        return self.log_folder if folder is None else folder

    @functools.cached_property
    def _storage(self) -> Storage:
        if local_folder(self.log_folder) is not None:
            return LocalFiles(self._root)
        folder = StoreFolder.configured(
            self.log_folder, self.storage_options, self._secret, _FIELD, "magnus-runlog-chunked"
        )
        return ObjectFiles(folder, protocol(self.log_folder))

    # What this process learned of the parts it touched: where each part's file is, and when it was
    # first written and whether it holds branches (a part never moves once written, and these never
    # change back). Kept for the most recent parts only (PART_MEMORY): a map of 100,000 items touches
    # 300,000 parts, and a part forgotten is found again on disk. Cached properties rather than
    # pydantic private attributes, which cost ~2 us per access: a map item touches them a dozen times.
    @functools.cached_property
    def _folders(self) -> "Recent[Tuple[str, str], str]":
        return Recent(PART_MEMORY)

    @functools.cached_property
    def _parts(self) -> "Recent[str, _Part]":
        return Recent(PART_MEMORY)

    @functools.cached_property
    def _parameter_files(self) -> "_UnchangedFiles":
        return _UnchangedFiles()

    @functools.cached_property
    def _index_folder(self) -> str:
        """The index's folder, checked once: the storage confines every folder below it that it reads,
        lists or writes in (symlinks)."""
        return self._storage.run_folder(self._root, index.INDEX_FOLDER)

    @functools.cached_property
    def _run_folders(self) -> Dict[str, str]:
        return {}

    @functools.cached_property
    def _existing_runs(self) -> Set[str]:
        """Runs this process saw recorded (a run's own file is never removed while it is written)."""
        return set()

    def run_folder(self, run_id: str) -> str:
        """``<log_folder>/<run_id>``; the run id and symlinks are checked once per run and process.

        Raises:
            UserInputError: the run id is not a safe folder name.
            RunLogError: a symlink leads the run's folder out of ``log_folder``.
        """
        folder = self._run_folders.get(run_id)
        if folder is None:
            problem = path_name_problem(run_id)
            if problem:
                raise UserInputError(f"run id {run_id!r} {problem}")
            folder = self._storage.run_folder(self._root, run_id)
            self._run_folders[run_id] = folder
        return folder

    # ---- the index of executed steps: small files under <log_folder>/.index (see magnus.datastore.index)
    def index_step(self, run_id: str, step_log: StepLog) -> None:
        index.record(self, run_id, step_log)

    def cached_execution(self, key: str) -> Optional[StepReference]:
        return index.cached(self, key)

    def producers(self, data_hash: str) -> List[StepReference]:
        return index.producers(self, data_hash)

    def write_index(self, path: str, content: bytes, replace: bool) -> None:
        target = self._index_path(path)
        if isinstance(self._storage, LocalFiles):  # on an object store a look costs what a put does
            if not replace and os.path.isfile(target):
                return
            os.makedirs(os.path.dirname(target), exist_ok=True)
        self._storage.write(target, content, durable=False)

    def read_index(self, path: str) -> Optional[bytes]:
        try:
            return self._storage.read(self._index_path(path))
        except Unreadable:
            return None

    def list_index(self, folder: str) -> List[str]:
        try:
            return [entry.name for entry in self._storage.list(self._index_path(folder))]
        except (FileNotFoundError, NotADirectoryError, Unreadable):
            return []

    def _index_path(self, path: str) -> str:
        """Where the index file ``path`` (``.index/...``) lies."""
        return self._index_folder + path[len(index.INDEX_FOLDER) :]

    # ---- whole logs ----------------------------------------------------------------------------
    def claim_run_log(self, run_log: RunLog) -> None:
        """Claim the run id by creating the run's own file exclusively: one creator wins, the others raise.

        Raises:
            RunLogExistsError: the run id is taken (by an earlier run or a concurrent creator).
            ConfigurationError: ``log_folder`` is a file, cannot be created or is not writable.
        """
        self._storage.prepare(self._root, _FIELD)
        folder = self.run_folder(run_log.run_id)
        header = run_log.model_dump(mode="json", exclude=_HEADER_EXCLUDES)
        try:
            self._storage.create(os.path.join(folder, layout.RUN_FILE), json.dumps(header).encode())
        except FileExistsError:
            raise RunLogExistsError(run_log.run_id) from None
        _write_json(self._storage, os.path.join(folder, layout.CONFIG_FILE), run_log.run_config, durable=True)

    def run_log_exists(self, run_id: str) -> bool:
        if run_id in self._existing_runs:
            return True
        exists = self._storage.is_file(os.path.join(self.run_folder(run_id), layout.RUN_FILE))
        if exists:  # what the first step of a job checks; its parts' lookups need not ask again
            self._existing_runs.add(run_id)
        return exists

    def run_ids(self) -> List[str]:
        """The folders of ``log_folder`` holding a run's own file (none when it does not exist yet).

        A folder whose name is no run id, or that leads outside ``log_folder``, is not a run.
        """
        try:
            entries = self._storage.list(self._root)
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            if path_name_problem(entry.name):
                continue
            try:
                folder = self.run_folder(entry.name)
            except RunLogError:
                continue
            if self._storage.is_file(os.path.join(folder, layout.RUN_FILE)):
                found.append(entry.name)
        return found

    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog:
        """The run log; with ``full=False`` only its own fields and parameters, not its steps."""
        folder = self.run_folder(run_id)
        with self.reading(run_id):
            run_log = validated(RunLog, self._header(run_id), layout.RUN_FILE)
            run_log.parameters = self.get_parameters(run_id)
            run_log.run_config = self.get_run_config(run_id)
            if full:
                run_log.steps = _read_steps(self._storage, layout.Container(folder, ""))
        return run_log

    def _header(self, run_id: str) -> Dict[str, Any]:
        """The run's own file (its fields, and the summary kept with its final status).

        Raises:
            RunLogNotFoundError: the run has no such file.
            Unreadable: it does not decode as a JSON object.
        """
        header = _read_json(self._storage, os.path.join(self.run_folder(run_id), layout.RUN_FILE))
        if header is None:
            raise RunLogNotFoundError(run_id)
        return mapping(header, layout.RUN_FILE)

    # ---- listing -------------------------------------------------------------------------------
    def run_summary(self, run_id: str, query: "RunQuery") -> Optional["RunSummary"]:
        """The summary kept in the run's own file with its final status; else one made from its step files."""
        from magnus.datastore.listing import summary_from_record, summary_of

        with self.reading(run_id):
            header = self._header(run_id)
            kept = summary_from_record(header.get(layout.SUMMARY))
            if kept is not None and (kept.run_id, kept.status) == (run_id, header.get("status")):
                return kept
            fields = validated(RunLog, header, layout.RUN_FILE)
            if not query.admits_header(fields):
                return None
            return summary_of(fields, self._span(run_id, fields))

    def _span(self, run_id: str, fields: RunLog) -> Tuple[Any, Any]:
        """The first start and last end of the run's attempts, read from its step files (steps reused
        by a resumed run left out, as ``summarize`` does)."""
        from magnus.datastore.listing import times_span

        top = layout.Container(self.run_folder(run_id), "")
        return times_span(_attempt_times(self._storage, top, None, prune_mock=bool(fields.original_run_id)))

    def put_run_log(self, run_log: RunLog) -> None:
        folder = self.run_folder(run_log.run_id)
        header = run_log.model_dump(mode="json", exclude=_HEADER_EXCLUDES)
        _write_json(self._storage, os.path.join(folder, layout.RUN_FILE), header, durable=True)
        _write_json(self._storage, os.path.join(folder, layout.CONFIG_FILE), run_log.run_config, durable=True)
        self.set_parameters(run_log.run_id, run_log.parameters)
        for step in run_log.steps.values():
            self.add_step_log(run_log.run_id, step)

    # ---- run-level fields ----------------------------------------------------------------------
    def update_run_log_status(self, run_id: str, status: str) -> None:
        """Rewrite the run's own file; a final status keeps the run's summary with it (for listing).

        The summary costs one read of the run's step files, once per run; when they do not read
        back, the status is written without it (listing then reads them, and names the run).
        """
        path = os.path.join(self.run_folder(run_id), layout.RUN_FILE)
        with self.reading(run_id):
            header = self._header(run_id)
        header["status"] = status
        header.pop(layout.SUMMARY, None)
        if status in _FINAL:
            header[layout.SUMMARY] = self._final_summary(run_id, header)
        _write_json(self._storage, path, header, durable=status in _FINAL)

    def _final_summary(self, run_id: str, header: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        from magnus.datastore.listing import summary_of, summary_record

        try:
            fields = validated(RunLog, header, layout.RUN_FILE)
            return summary_record(summary_of(fields, self._span(run_id, fields)))
        except Unreadable as exc:
            logger.warning("run %s: no summary kept for listing: %s", run_id, exc.reason)
            return None

    def get_parameters(self, run_id: str) -> Dict[str, Any]:
        """The parameters; a file unchanged since this process last read it is not parsed again.

        Every task reads the parameters, and one of them may be the long list a map iterates on.
        """
        folder = os.path.join(self.run_folder(run_id), layout.PARAMETERS)
        try:
            entries = sorted(self._storage.list(folder), key=lambda item: item.name)
        except FileNotFoundError:
            if not self.run_log_exists(run_id):
                raise RunLogNotFoundError(run_id) from None
            return {}
        parameters = {}
        with self.reading(run_id):
            for entry in entries:
                if entry.name.endswith(".json"):
                    record = self._parameter_files.read(self._storage, entry)
                    if record is not None:
                        name, value = _parameter(record, entry.name)
                        parameters[name] = value
        return parameters

    def set_parameters(self, run_id: str, parameters: Dict[str, Any]) -> None:
        """One file per parameter: writers setting different parameters never collide."""
        folder = os.path.join(self.run_folder(run_id), layout.PARAMETERS)
        for name, value in parameters.items():
            path = os.path.join(folder, f"{layout.file_name(name)}.json")
            _write_json(self._storage, path, {"name": name, "value": value}, durable=True)

    def get_run_config(self, run_id: str) -> Dict[str, Any]:
        with self.reading(run_id):
            config = _read_json(self._storage, os.path.join(self.run_folder(run_id), layout.CONFIG_FILE))
            return {} if config is None else mapping(config, layout.CONFIG_FILE)

    def set_run_config(self, run_id: str, run_config: Dict[str, Any]) -> None:
        path = os.path.join(self.run_folder(run_id), layout.CONFIG_FILE)
        _write_json(self._storage, path, {**self.get_run_config(run_id), **run_config}, durable=True)

    # ---- steps and branches --------------------------------------------------------------------
    def get_step_log(self, run_id: str, internal_name: str) -> StepLog:
        with self.reading(run_id):
            path, exists = self._locate(run_id, internal_name, "step")
            step_log = _read_step(self._storage, path) if exists else None
        if step_log is None:
            raise StepLogNotFoundError(run_id, internal_name)
        return step_log

    def add_step_log(self, run_id: str, step_log: StepLog) -> None:
        """Write the step's file; branches it carries are written when not recorded yet."""
        with self.reading(run_id):
            path, exists = self._locate(run_id, step_log.internal_name, "step", writing=True)
            payload = step_log.model_dump(mode="json", exclude={"branches"})
            payload[layout.BRANCHED] = bool(step_log.branches)
            durable = self.durable_steps and step_log.status in _FINAL
            self._write_part(path, payload, durable, exists)
            branches = layout.step_branches(path)
            for branch in step_log.branches.values():
                part = branch.internal_name[len(step_log.internal_name) + 1 :]
                branch_path = layout.branch_file(branches, part)
                self._folders[(run_id, branch.internal_name)] = branch_path
                if not self._storage.is_file(branch_path):
                    self._write_branch(run_id, branch_path, branch, exists=False)

    def update_step_log_status(self, run_id: str, internal_name: str, status: str, message: str = "") -> StepLog:
        """Rewrite the step's own file; its branches are untouched (and not in what is returned)."""
        with self.reading(run_id):
            path, exists = self._locate(run_id, internal_name, "step")
            data = _read_part(self._storage, path) if exists else None
            if data is None:
                raise StepLogNotFoundError(run_id, internal_name)
            step_log = validated(StepLog, {**data, "status": status, "message": message}, os.path.basename(path))
            data["status"], data["message"] = status, message
            self._write_part(path, data, self.durable_steps and status in _FINAL, exists=True)
        return step_log

    def get_branch_statuses(self, run_id: str, internal_name: str) -> Dict[str, str]:
        """One listing of the step's branches folder and one batch read of the branches' own files
        (on an object store, of those changed since this process last read them)."""
        with self.reading(run_id):
            path, exists = self._locate(run_id, internal_name, "step")
            if not exists:
                raise StepLogNotFoundError(run_id, internal_name)
            try:
                entries = list(self._storage.list(layout.step_branches(path)))
            except FileNotFoundError:
                return {}
            branches = [entry for entry in entries if entry.name.endswith(layout.BRANCH_SUFFIX)]
            statuses = {}
            for path, raw in self._storage.read_listed(branches).items():
                data = _read_part_of(path, raw)
                if data is not None:
                    branch = validated(BranchLog, data, os.path.basename(path))
                    statuses[branch.internal_name] = branch.status
        return statuses

    def get_branch_log(self, run_id: str, internal_branch_name: str) -> BranchLog:
        """A branch with its steps."""
        with self.reading(run_id):
            path = self._branch_file(run_id, internal_branch_name)
            branch_log = _read_branch(self._storage, path)
        if branch_log is None:
            raise BranchLogNotFoundError(run_id, internal_branch_name)
        return branch_log

    def get_branch_status(self, run_id: str, internal_branch_name: str) -> str:
        """The branch's own file only: its folder is not listed for its steps."""
        with self.reading(run_id):
            path = self._branch_file(run_id, internal_branch_name)
            data = _read_part(self._storage, path)
        if data is None:
            raise BranchLogNotFoundError(run_id, internal_branch_name)
        return validated(BranchLog, data, os.path.basename(path)).status

    def update_branch_log_status(self, run_id: str, internal_branch_name: str, status: str) -> None:
        """Rewrite the branch's own file only; its steps are untouched."""
        with self.reading(run_id):
            path = self._branch_file(run_id, internal_branch_name)
            header = _read_json(self._storage, path)
            if header is None:
                raise BranchLogNotFoundError(run_id, internal_branch_name)
            header = mapping(header, os.path.basename(path))
        header["status"] = status
        _write_json(self._storage, path, header, durable=False)

    def _branch_file(self, run_id: str, internal_branch_name: str) -> str:
        """The file of a recorded branch (its reader still finds it gone if it was removed meanwhile).

        Raises:
            BranchLogNotFoundError: the name is empty (the run is no branch) or the branch was never recorded.
        """
        if internal_branch_name:
            path, exists = self._locate(run_id, internal_branch_name, "branch")
            if exists:
                return path
        raise BranchLogNotFoundError(run_id, internal_branch_name)

    def add_branch_log(self, run_id: str, branch_log: BranchLog) -> None:
        """Write the branch's file, keeping its recorded steps; steps it carries are written when new."""
        with self.reading(run_id):
            path, exists = self._locate(run_id, branch_log.internal_name, "branch", writing=True)
            self._write_branch(run_id, path, branch_log, exists)
            self._mark_branched(layout.holding_step(path))

    # ---- mechanics -------------------------------------------------------------------------------
    def _write_branch(self, run_id: str, path: str, branch_log: BranchLog, exists: bool) -> None:
        payload = branch_log.model_dump(mode="json", exclude={"steps"})
        self._write_part(path, payload, False, exists)
        container = layout.branch_container(path)
        for step in branch_log.steps.values():
            part = step.internal_name[len(branch_log.internal_name) + 1 :]
            if not self._storage.is_file(container.step_file(part)):
                self.add_step_log(run_id, step)

    def _mark_branched(self, step_path: str) -> None:
        """Record in the step's file that it holds branches, so readers look for them (once per step)."""
        known = self._parts.get(step_path)
        if known is not None and known.branched:
            return
        data = _read_json(self._storage, step_path)
        if data is None:
            return
        data = mapping(data, os.path.basename(step_path))
        if not data.get(layout.BRANCHED):
            data[layout.BRANCHED] = True
            _write_json(self._storage, step_path, data, durable=False)
        self._parts[step_path] = _Part(data.get(layout.CREATED, 0), True)

    def _write_part(self, path: str, payload: Dict[str, Any], durable: bool, exists: bool) -> None:
        """Write a part's file, keeping the time it was first written (which orders siblings) and,
        for a step, that it holds branches."""
        known = self._parts.get(path)
        if known is None:
            existing = _read_json(self._storage, path) if exists else None
            if existing is not None:
                existing = mapping(existing, os.path.basename(path))
            if existing:
                known = _Part(existing.get(layout.CREATED, 0), bool(existing.get(layout.BRANCHED)))
            else:
                known = _Part(time.time_ns(), False)
        if payload.get(layout.BRANCHED) and not known.branched:
            known = _Part(known.created, True)
        self._parts[path] = known
        payload[layout.CREATED] = known.created
        if known.branched:
            payload[layout.BRANCHED] = True
        _write_json(self._storage, path, payload, durable=durable)

    def _locate(self, run_id: str, internal_name: str, kind: str, writing: bool = False) -> Tuple[str, bool]:
        """The part's folder; a missing parent is "not found" of the part (reading) or its parent (writing)."""
        key = (run_id, internal_name)
        known = self._folders.get(key)
        if known is not None:
            return known, True
        child = self._child_of_located(run_id, internal_name, kind)
        if child is not None:
            exists = self._storage.is_file(child)
            if exists or writing:
                self._folders[key] = child
            return child, exists
        folder = self.run_folder(run_id)
        if run_id not in self._existing_runs:  # a request per step on an object store: checked once
            if not self._storage.is_file(os.path.join(folder, layout.RUN_FILE)):
                raise RunLogNotFoundError(run_id)
            self._existing_runs.add(run_id)
        try:
            found, exists = layout.locate(folder, internal_name, kind, self._storage.is_file)
        except LookupError as missing:
            missing_kind = ("branch" if kind == "step" else "step") if writing else kind
            name = str(missing) if writing else internal_name
            if missing_kind == "step":
                raise StepLogNotFoundError(run_id, name) from None
            raise BranchLogNotFoundError(run_id, name) from None
        if exists or writing:
            self._folders[key] = found
        return found, exists

    def _child_of_located(self, run_id: str, internal_name: str, kind: str) -> Optional[str]:
        """The part's file without a walk, when its parent was located before and it adds one name.

        The common case (a step of a branch this process wrote, a branch of a step it wrote). A
        name whose new part holds dots (a map value ``0.5``) takes the walk, which resolves them.
        """
        parent, _, last = internal_name.rpartition(".")
        parent_path = self._folders.get((run_id, parent)) if parent else None
        if parent_path is None:
            return None
        if kind == "step" and parent_path.endswith(layout.BRANCH_SUFFIX):
            return layout.branch_container(parent_path).step_file(last)
        if kind == "branch" and parent_path.endswith(layout.STEP_SUFFIX):
            return layout.branch_file(layout.step_branches(parent_path), last)
        return None


class _Part(NamedTuple):
    """What this process knows of a part's file: when it was first written, whether it holds branches."""

    created: int
    branched: bool


class _UnchangedFiles:
    """Parsed JSON files, reused while the storage's version of a file shows it was not replaced.

    Locally a write is a rename, so a new version is a new inode with new times; a version written
    within the file system's clock tick of being read (``_SETTLE_NS``) is not kept: a second write
    in the same tick could reuse the freed inode and the same times. On an object store the
    version is the ETag, a hash of the content.
    """

    _SETTLE_NS = 50_000_000

    def __init__(self) -> None:
        self._parsed: Dict[str, Tuple[Any, Any]] = {}

    def read(self, storage: Storage, entry: Any) -> Any:
        version = storage.version(entry)
        kept = self._parsed.get(entry.path)
        if version is not None and kept is not None and kept[0] == version[0]:
            return kept[1]
        data = _read_json(storage, entry.path)
        if data is None or version is None:
            return data
        identity, changed_ns = version
        if changed_ns is None or time.time_ns() - changed_ns > self._SETTLE_NS:
            self._parsed[entry.path] = (identity, data)
        return data


def _read_steps(
    storage: Storage, container: layout.Container, entries: Optional[List[Any]] = None
) -> Dict[str, StepLog]:
    """The steps of a container, in the order they were first written.

    ``entries`` is the listing of the container's folder when the caller has it already (the
    branches of one step share a folder: it is listed once for all of them).
    """
    steps = {}
    for path, data in _in_order(storage, _step_entries(storage, container, entries)):
        step = _step_from(storage, path, data)
        steps[step.internal_name] = step
    return steps


def _step_entries(storage: Storage, container: layout.Container, entries: Optional[List[Any]]) -> List[Any]:
    """The entries of the container's own steps (not those of a branch below), listing its folder if needed."""
    if entries is None:
        try:
            entries = list(storage.list(container.folder))
        except FileNotFoundError:
            return []
    return [
        entry
        for entry in entries
        if entry.name.startswith(container.prefix)
        and entry.name.endswith(layout.STEP_SUFFIX)
        and layout.SEPARATOR not in entry.name[len(container.prefix) :]  # not a step of a branch below
    ]


def _in_order(storage: Storage, entries: List[Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """The parts of ``entries`` (read at once) as ``(path, data)``, in the order they were first written."""
    contents = storage.read_listed(entries)
    found = []
    for entry in entries:
        data = _read_part_of(entry.path, contents[entry.path])
        if data is not None:
            found.append((data.pop(layout.CREATED), entry.name, (entry.path, data)))
    found.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in found]


def _read_part(storage: Storage, path: str) -> Optional[Dict[str, Any]]:
    """One part's data (None when it is not there)."""
    data = _read_part_of(path, storage.read(path))
    if data is not None:
        data.pop(layout.CREATED)
    return data


def _read_part_of(path: str, raw: Optional[bytes]) -> Optional[Dict[str, Any]]:
    """A part's data as read (``raw``), with the time it was first written (0 when it does not say).

    Raises:
        Unreadable: the part is not a JSON object.
    """
    data = _parsed(path, raw)
    if data is None:
        return None
    data = mapping(data, os.path.basename(path))
    created = data.get(layout.CREATED, 0)
    data[layout.CREATED] = created if isinstance(created, int) and not isinstance(created, bool) else 0
    return data


def _read_step(storage: Storage, path: str) -> Optional[StepLog]:
    data = _read_part(storage, path)
    return None if data is None else _step_from(storage, path, data)


def _branch_entries(storage: Storage, step_path: str, data: Dict[str, Any]) -> Tuple[List[Any], Dict[str, List[Any]]]:
    """The branch files of the step whose file is ``step_path``, and the other entries of its branches
    folder grouped by the branch they belong to (one listing; none for a step that says it holds none)."""
    if data.get(layout.BRANCHED) is False:  # parts written before the flag existed say nothing: look
        return [], {}
    try:
        listing = list(storage.list(layout.step_branches(step_path)))
    except FileNotFoundError:
        return [], {}
    by_branch: Dict[str, List[Any]] = {}
    for entry in listing:  # grouped by the name before the first "+"
        if layout.SEPARATOR in entry.name:
            by_branch.setdefault(entry.name.split(layout.SEPARATOR, 1)[0], []).append(entry)
    return [entry for entry in listing if entry.name.endswith(layout.BRANCH_SUFFIX)], by_branch


def _step_from(storage: Storage, path: str, data: Dict[str, Any]) -> StepLog:
    """A step with its branches, each branch with its steps: one listing of the branches folder."""
    step = validated(StepLog, data, os.path.basename(path))
    branches, by_branch = _branch_entries(storage, path, data)
    for branch_path, branch_data in _in_order(storage, branches):
        branch = validated(BranchLog, branch_data, os.path.basename(branch_path))
        container = layout.branch_container(branch_path)
        branch.steps = _read_steps(storage, container, by_branch.get(container.prefix[: -len(layout.SEPARATOR)], []))
        step.branches[branch.internal_name] = branch
    return step


def _read_branch(storage: Storage, path: str) -> Optional[BranchLog]:
    data = _read_part(storage, path)
    if data is None:
        return None
    branch = validated(BranchLog, data, os.path.basename(path))
    branch.steps = _read_steps(storage, layout.branch_container(path))
    return branch


def _attempt_times(
    storage: Storage, container: layout.Container, entries: Optional[List[Any]], prune_mock: bool
) -> Iterator[Tuple[str, str]]:
    """``(start_time, end_time)`` of every attempt of the steps below ``container``, read as JSON only.

    Visits the parts :func:`_read_steps` reads, without building them: what listing a run needs of
    a map of thousands of items. ``prune_mock``: without the steps marked ``mock`` and what they hold.
    """
    for path, data in _in_order(storage, _step_entries(storage, container, entries)):
        if prune_mock and data.get("mock") is True:
            continue
        attempts = data.get("attempts", [])
        if not isinstance(attempts, list):
            raise Unreadable(f"{os.path.basename(path)}: attempts: not a list")
        for attempt in attempts:
            yield _times_of(mapping(attempt, os.path.basename(path)), os.path.basename(path))
        branches, by_branch = _branch_entries(storage, path, data)
        for branch_path, _ in _in_order(storage, branches):
            inner = layout.branch_container(branch_path)
            mine = by_branch.get(inner.prefix[: -len(layout.SEPARATOR)], [])
            yield from _attempt_times(storage, inner, mine, prune_mock)


def _times_of(attempt: Dict[str, Any], what: str) -> Tuple[str, str]:
    start, end = attempt.get("start_time", ""), attempt.get("end_time", "")
    if not isinstance(start, str) or not isinstance(end, str):
        raise Unreadable(f"{what}: attempts: a time is not text")
    return start, end


def _parameter(record: Any, what: str) -> Tuple[str, Any]:
    """The name and value of a parameter's file."""
    record = mapping(record, what)
    name = record.get("name")
    if not isinstance(name, str) or "value" not in record:
        raise Unreadable(f"{what}: not a parameter's name and value")
    return name, record["value"]


def _read_json(storage: Storage, path: str) -> Any:
    """A part's content; None when it is missing or left empty (see :func:`_parsed`)."""
    return _parsed(path, storage.read(path))


def _parsed(path: str, raw: Optional[bytes]) -> Any:
    """The JSON of a part read as ``raw`` (None: not there); None when it is empty.

    Every write is a rename (one whole object on a store), so only a power loss before the data of
    a local write that was not fsynced reached the disk leaves a part empty (no bytes, or zeros on
    file systems that allocate before they write): that part was not durably recorded. Any other
    content that is not JSON was not written by the store.

    Raises:
        Unreadable: ``raw`` is not JSON (its content is never shown).
    """
    if raw is None:
        return None
    if not raw.strip(_NOTHING_WRITTEN):
        logger.warning("%s: empty (left by a power loss?), read as not recorded", path)
        return None
    return load_json(raw, os.path.basename(path))


def _write_json(storage: Storage, path: str, data: Any, durable: bool) -> None:
    storage.write(path, json.dumps(data).encode(), durable=durable)

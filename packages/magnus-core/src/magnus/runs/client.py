"""Past runs as Python objects: ``magnus.Run(run_id)`` and ``magnus.runs()``.

What ``magnus runs list`` and ``magnus runs show`` print, for a notebook: a run's status, times,
parameters and metrics, its steps (attempts, messages, the branches and map items they hold),
the objects its steps put (loaded on demand through the catalog and pickler, as
``magnus.get_object`` loads them inside a run) and the files it put in the catalog (read or
copied on demand). The stores are the ones ``magnus runs`` reads (see `magnus.runs.store`):
the ``config`` file given, else ``MAGNUS_CONFIG_FILE``, else ``.run_log_store/`` in the working
folder. A run is read once, when it is made; nothing here writes to a store.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Union

from magnus.catalog import confined
from magnus.datastore.listing import RunQuery, branch_label, span, summarize, walk_steps
from magnus.datastore.models import BranchLog, DataCatalog, RunLog, StepAttempt, StepLog
from magnus.errors import CatalogError
from magnus.names import check_path_name, did_you_mean
from magnus.runs.store import RunStores, StepNotFoundError, open_stores, read_run

if TYPE_CHECKING:
    from magnus.runs.lineage import FileLineage

# How the message of a step reused by ``--use-cached`` ends (see magnus.runtime.units).
REUSED_MARK = "(--use-cached)"
# Where ``magnus.put_object`` keeps a run's objects when its catalog keeps no data (under the working folder).
OBJECTS_FOLDER = Path(".magnus") / "objects"


def _duration(start: Optional[datetime], end: Optional[datetime]) -> Optional[timedelta]:
    return end - start if start is not None and end is not None else None


class Steps(Mapping[str, "Step"]):
    """The steps of a run or of a branch, by name, in the order they ran."""

    def __init__(self, logs: Mapping[str, StepLog], run: "Run", where: str) -> None:
        self._steps = {log.name: Step(log, run) for log in logs.values()}
        self._where = where

    def __getitem__(self, name: str) -> "Step":
        step = self._steps.get(name)
        if step is None:
            known = ", ".join(self._steps) or "none"
            suggestion = did_you_mean(name, self._steps)
            raise StepNotFoundError(f"{self._where}: no step '{name}' (steps: {known}){suggestion}")
        return step

    def __iter__(self) -> Iterator[str]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return f"Steps({', '.join(self._steps)})"


class Branch:
    """A branch of a composite step: a parallel branch, a map item, a nested pipeline, a loop iteration."""

    def __init__(self, log: BranchLog, label: str, run: "Run") -> None:
        self.log = log
        self.name = label
        self.status = log.status
        self.steps = Steps(log.steps, run, f"run '{run.run_id}': branch '{log.internal_name}'")

    def __repr__(self) -> str:
        return f"Branch({self.name!r}, {self.status})"


class Step:
    """One step of a past run: how it ended, its attempts, metrics and the branches it holds.

    ``mocked``: the step passed without running its command (``executor: {type: mocked}``);
    ``reused``: a resumed run (``--use-cached``) copied it from the run it resumed.
    """

    def __init__(self, log: StepLog, run: "Run") -> None:
        self.log = log
        self.name = log.name
        self.internal_name = log.internal_name
        self.step_type = log.step_type
        self.status = log.status
        self.message = log.message
        self.attempts: List[StepAttempt] = list(log.attempts)
        self.metrics: Dict[str, Any] = dict(log.user_defined_metrics)
        self.reused = is_reused(log)
        self.mocked = log.mock and not self.reused
        self.start, self.end = span(log)
        self.duration = _duration(self.start, self.end)
        labels = {branch_label(log, branch): branch for branch in log.branches.values()}
        self.branches: Dict[str, Branch] = {label: Branch(branch, label, run) for label, branch in labels.items()}

    @property
    def parameters(self) -> Dict[str, Any]:
        """The parameters the step's last attempt was given ({} when it never ran)."""
        return dict(self.attempts[-1].parameters) if self.attempts else {}

    def __repr__(self) -> str:
        return f"Step({self.name!r}, {self.step_type}, {self.status})"


class CatalogFile:
    """A file a step put in the catalog: read it, or copy it out, when asked."""

    def __init__(self, entry: DataCatalog, run: "Run") -> None:
        self.name = entry.name
        self.data_hash = entry.data_hash
        self._run = run

    def read_bytes(self) -> bytes:
        """The file's content, fetched from the catalog.

        Raises:
            CatalogError: the catalog no longer holds it.
        """
        with tempfile.TemporaryDirectory(prefix="magnus-run-file-") as scratch:
            return self._fetch(Path(scratch)).read_bytes()

    def copy_to(self, folder: Union[str, Path]) -> Path:
        """Copy the file into ``folder`` (at its name in the catalog, folders made); the path written.

        Raises:
            CatalogError: the name the run log records would lead out of ``folder`` (an absolute
                path, a ``..``: a run log edited by hand), or the catalog no longer holds the file.
        """
        relative = Path(self.name)
        if relative.is_absolute() or ".." in relative.parts:
            where = f"run '{self._run.run_id}': file '{self.name}'"
            raise CatalogError(f"{where} would be copied outside {folder}; refused")
        target = confined(Path(folder), relative, "folder")
        with tempfile.TemporaryDirectory(prefix="magnus-run-file-") as scratch:
            fetched = self._fetch(Path(scratch))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fetched, target)
        return target

    def _fetch(self, scratch: Path) -> Path:
        self._run.stores.catalog.get(self.name, self._run.run_id, str(scratch))
        fetched = scratch / self.name
        if not fetched.is_file():
            raise CatalogError(f"run '{self._run.run_id}': the catalog holds no file '{self.name}'")
        return fetched

    def __repr__(self) -> str:
        return f"CatalogFile({self.name!r})"


class Run:
    """A past run, read from the stores ``magnus runs`` reads (``config``: a configuration file).

    ``run.status``, ``run.start``, ``run.end``, ``run.duration``, ``run.parameters`` (as the run
    ended), ``run.metrics`` (every step's, a later step's value winning), ``run.steps['train']``
    (a [`Step`][magnus.runs.client.Step]: ``.attempts``, ``.message``, ``.branches['3'].steps``),
    ``run.objects`` (names), ``run.get_object('model')``, ``run.files`` (catalog files). The run
    log itself is ``run.log``.

    Raises:
        UserInputError: no run has that id (naming the closest id the store holds), or the
            configuration names no store of runs.
    """

    def __init__(self, run_id: str, config: Optional[str] = None) -> None:
        self.stores: RunStores = open_stores(config or "")
        self._load(read_run(self.stores.run_log_store, run_id))

    @classmethod
    def _of(cls, log: RunLog, stores: RunStores) -> "Run":
        run = cls.__new__(cls)
        run.stores = stores
        run._load(log)
        return run

    def _load(self, log: RunLog) -> None:
        self.log = log
        self.run_id = log.run_id
        self.status = log.status
        self.tag = log.tag or ""
        self.original_run_id = log.original_run_id or ""
        self.parameters: Dict[str, Any] = dict(log.parameters)
        summary = summarize(log)
        self.start, self.end = summary.start, summary.end
        self.duration = summary.duration
        self.steps = Steps(log.steps, self, f"run '{self.run_id}'")
        self.metrics: Dict[str, Any] = {}
        for step in walk_steps(log):
            self.metrics.update(step.user_defined_metrics)

    @property
    def mocked(self) -> bool:
        """Whether the run was a dry run (``executor: {type: mocked}``): some step passed without running."""
        return any(step.mock and not is_reused(step) for step in walk_steps(self.log))

    @property
    def files(self) -> List[CatalogFile]:
        """The files the run's steps put in the catalog (objects aside), each once, in the order put."""
        extension = self.stores.pickler.extension
        seen: Dict[str, CatalogFile] = {}
        for step in walk_steps(self.log):
            for entry in step.data_catalog:
                if entry.stage == "put" and not (extension and entry.name.endswith(extension)):
                    seen.setdefault(entry.name, CatalogFile(entry, self))
        return list(seen.values())

    @property
    def objects(self) -> List[str]:
        """The names of the objects the run's steps put (``put_object``): load one with ``get_object``."""
        extension = self.stores.pickler.extension
        if not self.stores.catalog.keeps_data:
            folder = OBJECTS_FOLDER / self.run_id
            return sorted(path.name[: -len(extension)] for path in folder.glob(f"*{extension}") if path.is_file())
        names = {
            entry.name[: -len(extension)]
            for step in walk_steps(self.log)
            for entry in step.data_catalog
            if entry.stage == "put" and entry.name.endswith(extension) and "/" not in entry.name
        }
        return sorted(names)

    def get_object(self, name: str) -> Any:
        """The object a step of the run put as ``name``, loaded through the run's catalog and pickler.

        Raises:
            CatalogError: the run put no object of that name (naming the close one).
        """
        check_path_name(name, "object name")
        pickler, catalog = self.stores.pickler, self.stores.catalog
        if not catalog.keeps_data:
            stem = OBJECTS_FOLDER / self.run_id / name
            if Path(str(stem) + pickler.extension).is_file():
                return pickler.load(str(stem))
        else:
            with tempfile.TemporaryDirectory(prefix="magnus-run-object-") as scratch:
                try:
                    catalog.get(name + pickler.extension, self.run_id, scratch)
                    return pickler.load(str(Path(scratch, name)))
                except (CatalogError, FileNotFoundError):
                    pass
        raise CatalogError(f"run '{self.run_id}': no object '{name}' was put{did_you_mean(name, self.objects)}")

    def lineage(self, path: str) -> "FileLineage":
        """Where the file ``path`` this run put came from: the step that put it, its code, parameters and
        the files it got, recursively (see `magnus.runs.lineage`; ``magnus lineage PATH --run RUN``).

        Raises:
            UserInputError: the run put no file of that path.
        """
        from magnus.runs.lineage import lineage

        return lineage(self.stores.run_log_store, path, self.run_id)

    def __repr__(self) -> str:
        return f"Run({self.run_id!r}, {self.status})"


def is_reused(step: StepLog) -> bool:
    """Whether a step marked ``mock`` was copied from the run resumed (``--use-cached`` says so in its
    message) rather than passed without running (a mocked run)."""
    return step.mock and step.message.endswith(REUSED_MARK)


def runs(
    config: Optional[str] = None, status: Optional[str] = None, tag: Optional[str] = None, limit: Optional[int] = None
) -> List[Run]:
    """The runs of the store (as ``magnus runs list``), newest first: ``status``, ``tag`` select them,
    ``limit`` keeps the newest. A run whose log does not read back is left out."""
    stores = open_stores(config or "")
    query = RunQuery(status=(status or "").upper(), tag=tag or "", limit=limit)
    store = stores.run_log_store
    return [Run._of(read_run(store, summary.run_id), stores) for summary in store.list_runs(query).runs]

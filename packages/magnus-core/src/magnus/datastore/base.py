"""The run log store contract."""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterable, Iterator, List, Mapping, Optional

from magnus import defaults
from magnus.datastore.decoding import Unreadable
from magnus.datastore.models import BranchLog, RunLog, StepLog, StepReference
from magnus.errors import (
    BranchLogNotFoundError,
    ConfigurationError,
    RunLogExistsError,
    RunLogNotFoundError,
    RunLogUnreadableError,
    StepLogNotFoundError,
)
from magnus.reach import Reach
from magnus.service import BaseService

if TYPE_CHECKING:  # listing runs is `magnus runs`'s, not a run's: imported when asked
    from magnus.datastore.listing import RunListing, RunQuery, RunSummary


class BaseRunLogStore(BaseService):
    """Where run logs live.

    A store only has to implement two whole-log methods (``get_run_log_by_id`` and
    ``put_run_log``); every other method has a default built on them. Stores that can write one
    part of a log (a step, a branch) override the finer methods so that the cost of recording a
    step does not grow with the size of the run.

    Every write is atomic: a reader sees the state before or after it, never half of it. A log
    that does not read back (a file cut short, a garbled row) raises
    ``magnus.errors.RunLogUnreadableError`` naming the run and where it is kept, never an
    exception of the parser, and never with the stored content (see ``reading()``).
    """

    service_type: ClassVar[str] = "run_log_store"

    def reach(self) -> Reach:
        """A store keeps state: in its folders (this machine), else in this process unless it says more.

        Run logs of a store reaching no further than its process do not outlive it (``--use-cached``
        and ``magnus runs`` cannot find them).
        """
        return Reach.MACHINE if self.local_paths() else Reach.PROCESS

    def location(self, run_id: str) -> str:
        """Where a person finds the run log of ``run_id`` (a path, a URL without credentials, a table).

        Never reads or writes the store, and never holds a secret.
        """
        return f"the {self.service_name} run log store"

    @contextlib.contextmanager
    def reading(self, run_id: str) -> Iterator[None]:
        """Around a read of ``run_id``'s data: data that does not decode becomes one refusal naming the run.

        Stores decode with ``magnus.datastore.decoding``, whose ``Unreadable`` says why in
        a few words; here it becomes ``magnus.errors.RunLogUnreadableError`` with the run id
        and ``location()``.
        """
        try:
            yield
        except Unreadable as exc:
            raise RunLogUnreadableError(run_id, self.location(run_id), exc.reason) from None

    # ---- whole-log methods -------------------------------------------------------------------
    def create_run_log(
        self,
        run_id: str,
        dag_hash: str = "",
        use_cached: bool = False,
        tag: str = "",
        original_run_id: str = "",
        status: str = defaults.CREATED,
    ) -> RunLog:
        """Create and store a new run log, claiming ``run_id``: of processes creating the same run id
        at once, exactly one succeeds (through [`claim_run_log`][]) and the others raise.

        Raises:
            RunLogExistsError: a run log with that id exists; it is left untouched.
        """
        run_log = RunLog(
            run_id=run_id,
            dag_hash=dag_hash,
            use_cached=use_cached,
            tag=tag,
            original_run_id=original_run_id,
            status=status,
        )
        self.claim_run_log(run_log)
        return run_log

    def claim_run_log(self, run_log: RunLog) -> None:
        """Store a new run log, atomically refusing a run id that is taken.

        Stores shared between processes override this with one atomic operation (an exclusive
        create, a primary key); this default checks then writes, enough for a store of one process.

        Raises:
            RunLogExistsError: the run id is taken; nothing was written.
        """
        if self.run_log_exists(run_log.run_id):
            raise RunLogExistsError(run_log.run_id)
        self.put_run_log(run_log)

    @abstractmethod
    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog:
        """Return the run log of ``run_id``, as last written by any writer.

        Raises:
            RunLogNotFoundError: there is no run log with that id.
        """

    @abstractmethod
    def put_run_log(self, run_log: RunLog) -> None:
        """Store the whole run log, replacing what was stored for its run id."""

    def run_log_exists(self, run_id: str) -> bool:
        try:
            self.get_run_log_by_id(run_id, full=False)
        except RunLogNotFoundError:
            return False
        return True

    # ---- finding runs ------------------------------------------------------------------------------
    def run_ids(self) -> List[str]:
        """Every run id the store holds, in no particular order: what ``magnus runs`` lists from.

        Every store that keeps run logs implements it; this default refuses.

        Raises:
            ConfigurationError: this store cannot enumerate its runs.
        """
        raise ConfigurationError(f"run_log_store '{self.service_name}' cannot list the runs it holds")

    def list_runs(self, query: Optional[RunQuery] = None) -> RunListing:
        """The runs ``query`` selects, newest first, and the runs whose logs do not read back.

        Each run is summarised by ``run_summary()``; see ``summarize_runs()``.

        Raises:
            ConfigurationError: this store cannot enumerate its runs.
        """
        from magnus.datastore.listing import RunQuery

        query = query or RunQuery()
        return self.summarize_runs(self.run_ids(), query)

    def summarize_runs(
        self, run_ids: Iterable[str], query: RunQuery, known: Optional[Mapping[str, RunSummary]] = None
    ) -> RunListing:
        """The listing of ``run_ids``: the runs ``query`` selects, newest first, and the unreadable ones.

        A run's summary is taken from ``known`` (what a store found at once, one query for all
        runs) or from ``run_summary()``. A run removed meanwhile is left out; a run whose log is
        unreadable is left out and named in ``unreadable``: one bad run never hides the others.
        """
        from magnus.datastore.listing import RunListing, select_runs

        known = known or {}
        summaries = []
        unreadable = []
        for run_id in run_ids:
            try:
                summary = known[run_id] if run_id in known else self.run_summary(run_id, query)
            except RunLogNotFoundError:
                continue
            except RunLogUnreadableError as exc:
                unreadable.append(exc)
                continue
            if summary is not None:
                summaries.append(summary)
        return RunListing(select_runs(summaries, query), sorted(unreadable, key=lambda exc: exc.run_id))

    def run_summary(self, run_id: str, query: RunQuery) -> Optional[RunSummary]:
        """The summary of ``run_id``, equal to ``magnus.datastore.listing.summarize`` of its full log;
        None when its own fields (status, tag) show that ``query`` leaves it out.

        This default reads the run's own fields first (``full=False``) and its steps only when they
        pass. Stores that keep a summary of each run override it to read that instead of the log.

        Raises:
            RunLogNotFoundError: the run is not there (any more).
            RunLogUnreadableError: its log does not read back.
        """
        from magnus.datastore.listing import summarize

        if not query.admits_header(self.get_run_log_by_id(run_id, full=False)):
            return None
        return summarize(self.get_run_log_by_id(run_id))

    # ---- run-level fields -------------------------------------------------------------------
    def update_run_log_status(self, run_id: str, status: str) -> None:
        """Set the run's status; the last call for a run marks the end of the run."""
        run_log = self.get_run_log_by_id(run_id, full=False)
        run_log.status = status
        self.put_run_log(run_log)

    def get_parameters(self, run_id: str) -> Dict[str, Any]:
        """The run's current parameters: a new dict, whose values may be the store's own.

        Copy a value before changing it (what is handed to user code is copied where it is handed).
        """
        return dict(self.get_run_log_by_id(run_id, full=False).parameters)

    def set_parameters(self, run_id: str, parameters: Dict[str, Any]) -> None:
        """Merge ``parameters`` into the run's parameters, replacing values of existing names."""
        run_log = self.get_run_log_by_id(run_id, full=False)
        run_log.parameters.update(parameters)
        self.put_run_log(run_log)

    def get_run_config(self, run_id: str) -> Dict[str, Any]:
        return dict(self.get_run_log_by_id(run_id, full=False).run_config)

    def set_run_config(self, run_id: str, run_config: Dict[str, Any]) -> None:
        run_log = self.get_run_log_by_id(run_id, full=False)
        run_log.run_config.update(run_config)
        self.put_run_log(run_log)

    # ---- steps and branches -----------------------------------------------------------------
    # Every method names the run first, then the part of it: a step or branch by its dot path.
    def get_step_log(self, run_id: str, internal_name: str) -> StepLog:
        """The step log at the dot path ``internal_name``, with the branches it holds.

        Raises:
            StepLogNotFoundError: no such step has been recorded.
        """
        run_log = self.get_run_log_by_id(run_id)
        step_log, _ = run_log.search_step_by_internal_name(internal_name)
        return step_log

    def add_step_log(self, run_id: str, step_log: StepLog) -> None:
        """Record ``step_log`` at its internal name, replacing an older one, with the branches it carries.

        A composite step is recorded with the branches it fans out to in one call; a branch
        already recorded keeps the steps recorded in it.

        Raises:
            BranchLogNotFoundError: the branch that should hold the step was never recorded.
        """
        run_log = self.get_run_log_by_id(run_id)
        _place_step(run_log, step_log)
        self.put_run_log(run_log)

    def update_step_log_status(self, run_id: str, internal_name: str, status: str, message: str = "") -> StepLog:
        """Set a recorded step's status and message, keeping everything else it holds.

        Returns the step log as stored; stores that keep branches apart may return it without them.

        Raises:
            StepLogNotFoundError: the step was never recorded.
        """
        step_log = self.get_step_log(run_id, internal_name)
        step_log.status = status
        step_log.message = message
        self.add_step_log(run_id, step_log)
        return step_log

    def get_branch_statuses(self, run_id: str, internal_name: str) -> Dict[str, str]:
        """The status of every branch recorded under the composite step ``internal_name``, by name.

        What fan-in needs: stores that keep branches apart answer it without reading the steps of
        every branch (a map of thousands of items).

        Raises:
            StepLogNotFoundError: the step was never recorded.
        """
        step_log = self.get_step_log(run_id, internal_name)
        return {name: branch.status for name, branch in step_log.branches.items()}

    def get_branch_log(self, run_id: str, internal_branch_name: str) -> BranchLog:
        """The branch log at the dot path, with its steps.

        Raises:
            BranchLogNotFoundError: the branch was never recorded.
        """
        run_log = self.get_run_log_by_id(run_id)
        branch, _ = run_log.search_branch_by_internal_name(internal_branch_name)
        if not isinstance(branch, BranchLog):  # the empty name: the run is no branch
            raise BranchLogNotFoundError(run_id, internal_branch_name)
        return branch

    def get_branch_status(self, run_id: str, internal_branch_name: str) -> str:
        """The status of the branch at the dot path, its steps unread.

        What a launch into a map item checks: stores that keep branches apart read the branch's
        own record, not a listing of its siblings' steps (a map of thousands of items).

        Raises:
            BranchLogNotFoundError: the branch was never recorded.
        """
        return self.get_branch_log(run_id, internal_branch_name).status

    def update_branch_log_status(self, run_id: str, internal_branch_name: str, status: str) -> None:
        """Set a branch's status, keeping its steps.

        Raises:
            BranchLogNotFoundError: the branch was never recorded.
        """
        branch_log = self.get_branch_log(run_id, internal_branch_name)
        branch_log.status = status
        self.add_branch_log(run_id, branch_log)

    def add_branch_log(self, run_id: str, branch_log: BranchLog) -> None:
        """Record a branch log under the step that holds it, keeping the steps already in it.

        Raises:
            StepLogNotFoundError: the step that should hold the branch was never recorded.
        """
        run_log = self.get_run_log_by_id(run_id)
        _place_branch(run_log, branch_log)
        self.put_run_log(run_log)

    # ---- the index of executed steps ---------------------------------------------------------
    def index_step(self, run_id: str, step_log: StepLog) -> None:
        """Index a recorded step by its cache key and the content it put, when it executed successfully
        (a reused or failed step is not indexed); called once the step's log is recorded.

        Idempotent. The default indexes nothing and [`cached_execution`][] and [`producers`][] scan
        the runs; stores that hold many runs keep an index (`magnus.datastore.index`).
        """

    def cached_execution(self, key: str) -> Optional[StepReference]:
        """A step of any run of this store that executed successfully with cache ``key``, or None.

        Any is as good a hit; a step indexed after looking for the key and missing it (caching on)
        is the one answered from then on, so an execution that is gone is replaced. An answer is a
        hint: the caller reads that step's log and checks its key before reusing it.
        """
        from magnus.datastore.index import scan_runs

        found = scan_runs(self, lambda step: step.cache is not None and step.cache.key == key)
        return found[-1] if found else None

    def producers(self, data_hash: str) -> List[StepReference]:
        """Every step of any run of this store that executed successfully and put a file of content
        ``data_hash`` in the catalog, earliest first."""
        from magnus.datastore.index import put_hashes, scan_runs

        return scan_runs(self, lambda step: data_hash in put_hashes(step))


def parent_name(internal_name: str, parts: int = 1) -> str:
    """Drop the last ``parts`` components of a dot path ('' when nothing is left)."""
    return ".".join(internal_name.split(".")[:-parts]) if "." in internal_name else ""


def _step_holder(run_log: RunLog, internal_name: str) -> Dict[str, StepLog]:
    """The steps (of the run, or of the branch that holds it) a step log at ``internal_name`` goes in.

    Raises:
        BranchLogNotFoundError: the branch holding it was never recorded (a step of a map item the
            map never had): nothing may be written for it.
    """
    if "." not in internal_name or internal_name in run_log.steps:
        return run_log.steps
    return _holding_branch(run_log, internal_name).steps


def _place_step(run_log: RunLog, step_log: StepLog) -> None:
    """Put a step log where its dot path says, in the run log or in the branch that holds it.

    Branches recorded before and not carried by ``step_log`` are kept, and so are the steps of a
    recorded branch it carries without steps: a step's own fields are replaced, not its branches.
    """
    name = step_log.internal_name
    holder = _step_holder(run_log, name)
    existing = holder.get(name)
    if existing is not None and existing is not step_log and existing.branches:
        merged: Dict[str, BranchLog] = {}
        for branch_name, branch in existing.branches.items():  # in the order they were recorded
            carried = step_log.branches.get(branch_name, branch)
            if carried is not branch and not carried.steps:
                carried.steps = branch.steps
            merged[branch_name] = carried
        step_log.branches = {**merged, **step_log.branches}
    holder[name] = step_log


def _holding_branch(run_log: RunLog, internal_name: str) -> BranchLog:
    """The branch log whose steps hold ``internal_name``: the longest recorded branch prefix."""
    parts = internal_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            branch, _ = run_log.search_branch_by_internal_name(".".join(parts[:cut]))
        except BranchLogNotFoundError:
            continue
        if isinstance(branch, BranchLog):
            return branch
    raise BranchLogNotFoundError(run_log.run_id, parent_name(internal_name))


def _branch_holder(run_log: RunLog, internal_name: str) -> StepLog:
    """The step log a branch log at ``internal_name`` goes under.

    Raises:
        StepLogNotFoundError: the step holding it was never recorded.
    """
    parts = internal_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            step, _ = run_log.search_step_by_internal_name(".".join(parts[:cut]))
        except StepLogNotFoundError:
            continue
        return step
    raise StepLogNotFoundError(run_log.run_id, parent_name(internal_name))


def _place_branch(run_log: RunLog, branch_log: BranchLog) -> None:
    """Put a branch log under the step that holds it, keeping steps it already recorded."""
    step = _branch_holder(run_log, branch_log.internal_name)
    existing = step.branches.get(branch_log.internal_name)
    if existing is not None and existing is not branch_log and not branch_log.steps:
        branch_log.steps = existing.steps
    step.branches[branch_log.internal_name] = branch_log

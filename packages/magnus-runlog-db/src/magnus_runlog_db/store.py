"""``run_log_store: {type: db, config: {connection_string: ..., db_name: ...}}``.

Run logs in a database through SQLAlchemy 2: PostgreSQL (psycopg 3) for runs whose steps run on
other machines (Argo pods, SLURM jobs: no shared volume needed), SQLite for one machine. Each part
of a run log (the run's own fields, each parameter, each step, each branch) is one row (see
:mod:`magnus_runlog_db.schema`), so:

- writers of different parts never write the same row, and a part is replaced by one atomic
  statement: map iterations and parallel branches in many processes write one run at once and
  lose nothing;
- recording a step writes that step's row only: its cost does not grow with the size of the run;
- every write is committed before the method returns: a process killed mid-run leaves a log that
  reads back (the step it was running shows its last recorded status) and ``--use-cached`` resumes;
- read-modify-writes of one row (the run's config) lock that row while they change it;
- the run's row keeps its summary (status, tag, first start, last end) from its final status on,
  so listing runs is one query, not a read of every part of every run; a running run, or one
  recorded before revision 0003, is summarised from its parts' rows;
- a row that does not decode refuses its run in one line naming it (``RunLogUnreadableError``).

The connection string's ``${name}`` parts are secrets of the run's secrets backend, handed over
by :meth:`resolve_secrets`; they are kept in memory only and never reach a run log (the summary
records the configured text, a literal password and credential-like query values as ``***``), a
manifest or a message. A connection string that cannot be parsed without doubt is refused when the
configuration is read, without being shown.
"""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Set, Tuple, Union

import sqlalchemy as sa
from pydantic import ConfigDict, Field, PrivateAttr, field_validator
from sqlalchemy.engine import URL, Connection, Engine

from magnus import defaults
from magnus.credentials import redacted_url, unparseable, url_problem
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.decoding import Unreadable, load_mapping
from magnus.datastore.listing import (
    RunListing,
    RunQuery,
    RunSummary,
    summarize,
    summary_of,
    summary_record,
    times_span,
)
from magnus.datastore.models import BranchLog, RunLog, StepLog, StepReference
from magnus.errors import (
    BranchLogNotFoundError,
    ConfigurationError,
    RunLogExistsError,
    RunLogNotFoundError,
    StepLogNotFoundError,
)
from magnus.reach import Reach
from magnus_runlog_db import connection, rows
from magnus_runlog_db.dialects import insert_for, upsert
from magnus_runlog_db.migrate import ensure_schema
from magnus_runlog_db.schema import BRANCH, DEFAULT_PREFIX, PREFIX_PATTERN, STEP, Tables, tables
from magnus_runlog_db.statements import PART_KEY, PART_UPDATE, Statements

_DEFAULT_URL = "sqlite:///.run_log_store/runs.db"
_FINAL = (defaults.SUCCESS, defaults.FAIL)
_Key = Tuple[str, str, str]  # (run_id, kind, internal_name)


class DatabaseRunLogStore(BaseRunLogStore):
    """Run logs as rows of a PostgreSQL or SQLite database; reading a run reassembles magnus 0.5.1's JSON."""

    service_name: ClassVar[str] = "db"
    # A refused connection string is never quoted back (it may hold a password).
    model_config = ConfigDict(hide_input_in_errors=True)

    connection_string: str = Field(
        default=_DEFAULT_URL,
        description="SQLAlchemy URL (postgresql+psycopg://USER:${secret}@HOST:PORT/DB or sqlite:///FILE); "
        "${name} is the secret 'name' of the secrets backend.",
    )
    db_name: str = Field(
        default=DEFAULT_PREFIX, description="Prefix of the store's tables (<db_name>_runs, _parts, ...)."
    )
    pool_size: int = Field(default=5, ge=1, description="Connections kept open per process (PostgreSQL).")
    connect_timeout: int = Field(
        default=10, ge=1, description="Seconds to wait for the server (PostgreSQL) or the write lock (SQLite)."
    )
    durable_steps: bool = Field(
        default=False,
        description="PostgreSQL: every step and branch write waits for the server's disk flush (survives a server "
        "crash), for a flush per write; the run's own row and its parameters always do.",
    )

    _secret: Optional[Callable[[str], str]] = PrivateAttr(default=None)

    @field_validator("connection_string")
    @classmethod
    def _parseable(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(unparseable(problem))
        return value

    @field_validator("db_name")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if not PREFIX_PATTERN.match(value):
            raise ValueError("must be a table-name prefix: letters, digits and '_', not starting with a digit")
        return value

    # ---- service declarations ---------------------------------------------------------------------
    def resolve_secrets(self, secret: Callable[[str], str]) -> None:
        """Keep the secrets backend's look-up, and resolve the URL now (a missing secret stops the run early)."""
        self._secret = secret
        self.__dict__.pop("url", None)
        self.url  # noqa: B018 - resolve now, so a missing secret or a bad URL is refused before the run

    def reach(self) -> Reach:
        """A server: any host; an SQLite file: this machine (its folder); SQLite in memory: this process."""
        if self.url.get_backend_name() != "sqlite":
            return Reach.ANYWHERE
        return Reach.MACHINE if self.local_paths() else Reach.PROCESS

    def local_paths(self) -> List[str]:
        """The folder of an SQLite database (steps elsewhere must see it); none for a server."""
        if self.url.get_backend_name() != "sqlite" or self.url.database in (None, "", ":memory:"):
            return []
        import os

        return [os.path.dirname(self.url.database) or "."]

    def state_paths(self) -> List[str]:
        """An SQLite database's files (with its journal), not its folder: that is often the project's."""
        if not self.local_paths():
            return []
        database = str(self.url.database)
        return [database, *(database + suffix for suffix in ("-journal", "-wal", "-shm"))]

    def get_summary(self) -> Dict[str, Any]:
        summary = super().get_summary()
        summary["connection_string"] = redacted_url(self.connection_string)
        return summary

    def location(self, run_id: str) -> str:
        """The database (password hidden) and the run's table, as a person would query it."""
        return f"{redacted_url(self.connection_string)}, table {self.db_name}_runs, run_id '{run_id}'"

    # ---- connections ----------------------------------------------------------------------------------
    @functools.cached_property
    def url(self) -> URL:
        """The resolved URL: in memory only (it may hold a password)."""
        names = list(connection.placeholders(self.connection_string))
        if names and self._secret is None:
            raise ConfigurationError(
                f"run_log_store db: connection_string names secrets ({', '.join(names)}) but no secrets backend "
                "was handed to the store (magnus does when it composes a run; in code call resolve_secrets)"
            )
        return connection.resolve_url(self.connection_string, self._secret or _no_secret)

    @functools.cached_property
    def _tables(self) -> Tables:
        return tables(self.db_name)

    @functools.cached_property
    def _engine(self) -> Engine:
        engine = connection.engine_for(self.url, self.pool_size, self.connect_timeout, self.durable_steps)
        with self._translated_errors():
            ensure_schema(engine, self.db_name)
        return engine

    @functools.cached_property
    def _statements(self) -> Statements:
        return Statements(self._tables, self._engine.dialect)

    @functools.cached_property
    def _known(self) -> Set[_Key]:
        """Parts this process knows are recorded (they are never removed while a run is written)."""
        return set()

    @contextlib.contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.IntegrityError:
            raise
        except sa.exc.DBAPIError as error:
            connection.raise_database_error(error, self.url, self.connect_timeout)

    @contextlib.contextmanager
    def _connect(self, atomic: bool = False, durable: bool = False) -> Iterator[Connection]:
        """A connection; ``atomic``: its statements commit together (else each one on its own).

        ``durable``: the commit waits for the server's disk flush (the run's row, its parameters),
        whatever ``durable_steps`` says. On PostgreSQL a single statement runs in autocommit (one
        round trip), on the connection the process keeps for them; SQLite always takes its write
        lock at ``BEGIN`` so writers queue.
        """
        engine = self._engine
        durable = durable and not self.durable_steps  # with durable_steps every session flushes
        with self._translated_errors():
            if atomic or durable or engine.dialect.name == "sqlite":
                with engine.begin() as conn:
                    if durable:
                        connection.flush_on_commit(conn)
                    yield conn
            else:
                yield connection.autocommit_connection(engine)

    def _upsert(self, conn: Connection, table: sa.Table, values: Any, keys: List[str], update: List[str]) -> None:
        conn.execute(upsert(insert_for(conn.dialect, table), keys, update), values)

    # ---- the index of executed steps (see magnus.datastore.index) ----------------------------------
    def index_step(self, run_id: str, step_log: StepLog) -> None:
        """One row per cache key and per content the step put, in one transaction."""
        from magnus.datastore.index import executed, is_digest, put_hashes, reference_of

        if not executed(step_log) or step_log.cache is None:
            return
        ended = reference_of(run_id, step_log).time
        entries = [("put", digest) for digest in put_hashes(step_log)]
        if is_digest(step_log.cache.key):
            entries.append(("key", step_log.cache.key))
        values = [
            {"kind": kind, "digest": digest, "run_id": run_id, "internal_name": step_log.internal_name, "ended": ended}
            for kind, digest in entries
        ]
        if values:
            with self._connect(atomic=True) as conn:
                self._upsert(
                    conn, self._tables.step_index, values, ["kind", "digest", "run_id", "internal_name"], ["ended"]
                )

    def cached_execution(self, key: str) -> Optional[StepReference]:
        found = self._indexed("key", key)
        return found[-1] if found else None

    def producers(self, data_hash: str) -> List[StepReference]:
        return self._indexed("put", data_hash)

    def _indexed(self, kind: str, digest: str) -> List[StepReference]:
        """The steps indexed under ``kind`` and ``digest``, earliest first."""
        table = self._tables.step_index
        query = (
            sa.select(table.c.run_id, table.c.internal_name, table.c.ended)
            .where(table.c.kind == kind, table.c.digest == digest)
            .order_by(table.c.ended, table.c.run_id, table.c.internal_name)
        )
        with self._connect() as conn:
            return [StepReference(run_id=row[0], step=row[1], time=row[2]) for row in conn.execute(query)]

    # ---- whole logs ---------------------------------------------------------------------------------
    def claim_run_log(self, run_log: RunLog) -> None:
        """Insert the run's row; an existing run id is refused by the database's key, atomically."""
        runs = self._tables.runs
        try:
            with self._connect(durable=True) as conn:
                conn.execute(
                    runs.insert().values(
                        run_id=run_log.run_id,
                        run_config="{}",
                        created_at=sa.func.now(),
                        updated_at=sa.func.now(),
                        **rows.header_values(run_log),
                    )
                )
        except sa.exc.IntegrityError:
            raise RunLogExistsError(run_log.run_id) from None

    def run_log_exists(self, run_id: str) -> bool:
        with self._connect() as conn:
            return self._statements.run_exists.execute(conn, {"run_id": run_id}).first() is not None

    def run_ids(self) -> List[str]:
        with self._connect() as conn:
            return [row[0] for row in conn.execute(sa.select(self._tables.runs.c.run_id))]

    def list_runs(self, query: Optional[RunQuery] = None) -> RunListing:
        """The runs ``query`` selects, in one query of the runs' rows: status and tag are matched by
        the database (indexed columns), and a finished run's summary is read from its row."""
        query = query or RunQuery()
        runs = self._tables.runs
        selected = sa.select(runs.c.run_id, runs.c.status, runs.c.summary)
        if query.status:
            selected = selected.where(runs.c.status == query.status)
        if query.tag:
            selected = selected.where(runs.c.tag == query.tag)
        with self._connect() as conn:
            found = list(conn.execute(selected))
        kept = {run_id: rows.kept_summary(run_id, status, summary) for run_id, status, summary in found}
        known = {run_id: summary for run_id, summary in kept.items() if summary is not None}
        return self.summarize_runs(list(kept), query, known)

    def run_summary(self, run_id: str, query: RunQuery) -> Optional[RunSummary]:
        """The summary kept in the run's row; else one made from its parts' rows, without building them."""
        runs = self._tables.runs
        with self.reading(run_id), self._connect() as conn:
            header = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if header is None:
                raise RunLogNotFoundError(run_id)
            kept = rows.kept_summary(run_id, header["status"], header["summary"])
            if kept is not None:
                return kept
            fields = rows.run_fields_from(header)
            if not query.admits_header(fields):
                return None
            return summary_of(fields, self._span(conn, fields))

    def _span(self, conn: Connection, fields: RunLog) -> Tuple[Any, Any]:
        """The first start and last end of the run's attempts (steps reused by a resumed run left out)."""
        parts = self._tables.parts
        columns = (parts.c.kind, parts.c.internal_name, parts.c.parent, parts.c.body)
        found = conn.execute(sa.select(*columns).where(parts.c.run_id == fields.run_id)).mappings()
        return times_span(rows.attempt_times(found, prune_mock=bool(fields.original_run_id)))

    def _final_summary(self, conn: Connection, run_id: str, status: str) -> Optional[str]:
        """The summary of a run ending with ``status``, as kept in its row (None: the run is not there,
        or its parts do not read back: listing then reads them, and names the run)."""
        runs = self._tables.runs
        header = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if header is None:
            return None
        try:
            fields = rows.run_fields_from(header)
            fields.status = status
            return json.dumps(summary_record(summary_of(fields, self._span(conn, fields))))
        except Unreadable:
            return None

    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog:
        """The run log; with ``full=False`` its own fields, parameters and config, not its steps."""
        runs, parts = self._tables.runs, self._tables.parts
        with self.reading(run_id), self._connect() as conn:
            header = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
            if header is None:
                raise RunLogNotFoundError(run_id)
            run_log = rows.run_log_from(header, self._parameter_rows(conn, run_id))
            if full:
                found = conn.execute(sa.select(parts).where(parts.c.run_id == run_id).order_by(parts.c.id))
                rows.assemble(list(found.mappings()), top=run_log)
        return run_log

    def put_run_log(self, run_log: RunLog) -> None:
        """Replace everything stored for the run by ``run_log``, in one transaction."""
        runs, parts = self._tables.runs, self._tables.parts
        final = run_log.status in _FINAL
        header = {
            "run_id": run_log.run_id,
            "run_config": json.dumps(run_log.run_config),
            "created_at": sa.func.now(),
            "updated_at": sa.func.now(),
            "summary": json.dumps(summary_record(summarize(run_log))) if final else None,
            **rows.header_values(run_log),
        }
        part_rows = [row for step in run_log.steps.values() for row in rows.parts_of_step(step, "")]
        with self._connect(atomic=True, durable=True) as conn:
            update = [name for name in header if name not in ("run_id", "created_at")]
            self._upsert(conn, runs, header, ["run_id"], update)
            self._write_parameters(conn, run_log.run_id, run_log.parameters)
            stale = parts.delete().where(parts.c.run_id == run_log.run_id)
            if part_rows:
                kept = [(row["kind"], row["internal_name"]) for row in part_rows]
                stale = stale.where(sa.tuple_(parts.c.kind, parts.c.internal_name).not_in(kept))
            conn.execute(stale)
            for row in part_rows:
                self._upsert(conn, parts, {"run_id": run_log.run_id, **row}, PART_KEY, PART_UPDATE)

    # ---- run-level fields -------------------------------------------------------------------------
    def update_run_log_status(self, run_id: str, status: str) -> None:
        """Set the run's status; a final one keeps the run's summary with it (one read of its parts'
        rows, once per run), any other clears it."""
        runs = self._tables.runs
        with self._connect(durable=True) as conn:
            summary = self._final_summary(conn, run_id, status) if status in _FINAL else None
            changed = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(status=status, summary=summary, updated_at=sa.func.now())
            )
        if changed.rowcount == 0:
            raise RunLogNotFoundError(run_id)

    def get_parameters(self, run_id: str) -> Dict[str, Any]:
        """The parameters, in one query that also tells a run without parameters from no run."""
        with self._connect() as conn:
            found = self._statements.parameters.all(conn, {"run_id": run_id})
        if not found:
            raise RunLogNotFoundError(run_id)
        with self.reading(run_id):
            return rows.parameters_from((name, value) for _, name, value in found if name is not None)

    def set_parameters(self, run_id: str, parameters: Dict[str, Any]) -> None:
        """One row per name: writers setting different parameters never collide."""
        if not parameters:
            if not self.run_log_exists(run_id):
                raise RunLogNotFoundError(run_id)
            return
        try:
            with self._connect(durable=True) as conn:
                self._write_parameters(conn, run_id, parameters)
        except sa.exc.IntegrityError:
            raise RunLogNotFoundError(run_id) from None

    def _write_parameters(self, conn: Connection, run_id: str, parameters: Dict[str, Any]) -> None:
        if parameters:
            values = [
                {"run_id": run_id, "name": name, "value": json.dumps(value)} for name, value in parameters.items()
            ]
            self._upsert(conn, self._tables.parameters, values, ["run_id", "name"], ["value"])

    def _parameter_rows(self, conn: Connection, run_id: str) -> List[Tuple[str, str]]:
        parameters = self._tables.parameters
        query = sa.select(parameters.c.name, parameters.c.value).where(parameters.c.run_id == run_id)
        return [(name, value) for name, value in conn.execute(query.order_by(parameters.c.name))]

    def get_run_config(self, run_id: str) -> Dict[str, Any]:
        runs = self._tables.runs
        with self._connect() as conn:
            found = conn.execute(sa.select(runs.c.run_config).where(runs.c.run_id == run_id)).scalar()
        if found is None:
            raise RunLogNotFoundError(run_id)
        with self.reading(run_id):
            return load_mapping(found, "the run's row: run_config")

    def set_run_config(self, run_id: str, run_config: Dict[str, Any]) -> None:
        """Merge into the run's config with the run's row locked (no concurrent merge is lost)."""
        runs = self._tables.runs
        with self._connect(atomic=True, durable=True) as conn:
            locked = sa.select(runs.c.run_config).where(runs.c.run_id == run_id).with_for_update()
            found = conn.execute(locked).scalar()
            if found is None:
                raise RunLogNotFoundError(run_id)
            with self.reading(run_id):
                merged = json.dumps({**load_mapping(found, "the run's row: run_config"), **run_config})
            conn.execute(
                runs.update().where(runs.c.run_id == run_id).values(run_config=merged, updated_at=sa.func.now())
            )

    # ---- steps and branches ---------------------------------------------------------------------------
    def get_step_log(self, run_id: str, internal_name: str) -> StepLog:
        """The step with its branches and their steps (one recursive query over parent keys)."""
        step = self._subtree(run_id, STEP, internal_name)
        if not isinstance(step, StepLog):
            raise StepLogNotFoundError(run_id, internal_name)
        return step

    def add_step_log(self, run_id: str, step_log: StepLog) -> None:
        """Write the step's row; branches (and their steps) it carries are written when not recorded.

        Step names hold no dots, so the branch holding a step is its name without the last part.
        """
        parent = step_log.internal_name.rpartition(".")[0]
        part_rows = rows.parts_of_step(step_log, parent)
        try:
            if parent:
                self._require(run_id, BRANCH, parent, holder=BRANCH)
            self._write_parts(run_id, part_rows)
        except sa.exc.IntegrityError:
            raise RunLogNotFoundError(run_id) from None

    def update_step_log_status(self, run_id: str, internal_name: str, status: str, message: str = "") -> StepLog:
        """One ``UPDATE`` of the step's row; returns the step as stored, without its branches."""
        key = {"run_id": run_id, "kind": STEP, "name": internal_name}
        with self._connect() as conn:
            changed = self._statements.step_status.execute(conn, {**key, "status": status, "message": message})
            found = changed.mappings().first()
        if found is None:
            raise StepLogNotFoundError(run_id, internal_name)
        with self.reading(run_id):
            return rows.step_from(found, internal_name)

    def get_branch_statuses(self, run_id: str, internal_name: str) -> Dict[str, str]:
        """The step's row and its branches' rows, in one query: no step of any branch is read."""
        with self._connect() as conn:
            found = self._statements.branch_statuses.all(conn, {"run_id": run_id, "name": internal_name})
        if not any(kind == STEP for kind, _, _ in found):
            raise StepLogNotFoundError(run_id, internal_name)
        return {name: status for kind, name, status in found if kind == BRANCH}

    def get_branch_log(self, run_id: str, internal_branch_name: str) -> BranchLog:
        """A branch with its steps."""
        branch = self._subtree(run_id, BRANCH, internal_branch_name)
        if not isinstance(branch, BranchLog):
            raise BranchLogNotFoundError(run_id, internal_branch_name)
        return branch

    def get_branch_status(self, run_id: str, internal_branch_name: str) -> str:
        """The branch's row alone, one ``SELECT``: no step of it is read."""
        key = {"run_id": run_id, "kind": BRANCH, "name": internal_branch_name}
        with self._connect() as conn:
            found = self._statements.part_status.all(conn, key)
        if not found:
            raise BranchLogNotFoundError(run_id, internal_branch_name)
        return str(found[0][0])

    def update_branch_log_status(self, run_id: str, internal_branch_name: str, status: str) -> None:
        """One ``UPDATE`` of the branch's row; its steps are untouched."""
        key = {"run_id": run_id, "kind": BRANCH, "name": internal_branch_name}
        with self._connect() as conn:
            changed = self._statements.branch_status.execute(conn, {**key, "status": status})
        if changed.rowcount == 0:
            raise BranchLogNotFoundError(run_id, internal_branch_name)

    def add_branch_log(self, run_id: str, branch_log: BranchLog) -> None:
        """Write the branch's row, keeping its recorded steps; steps it carries are written when new.

        A map value may hold dots (``0.5``), so the step holding the branch is the longest recorded
        step whose name prefixes the branch's, looked up once per branch and process.
        """
        parent = self._holding_step(run_id, branch_log.internal_name)
        self._write_parts(run_id, rows.parts_of_branch(branch_log, parent))

    # ---- mechanics -------------------------------------------------------------------------------------
    def _write_parts(self, run_id: str, part_rows: List[Dict[str, Any]]) -> None:
        """Replace the first part (a step or branch), add the parts it carries when not recorded.

        One part is one statement, its own transaction; more are written in one transaction.
        """
        statements = self._statements
        with self._connect(atomic=len(part_rows) > 1) as conn:
            statements.replace_part.execute(conn, {"run_id": run_id, **part_rows[0]})
            if len(part_rows) > 1:
                statements.add_part_if_new.execute(conn, [{"run_id": run_id, **row} for row in part_rows[1:]])
        self._known.update((run_id, row["kind"], row["internal_name"]) for row in part_rows)

    def _require(self, run_id: str, kind: str, name: str, holder: str) -> None:
        """Raise the not-found error of the holding part when it was never recorded.

        A recorded part is never removed while its run is written, so this looks once per part
        and process, and needs no transaction with the write that follows it.
        """
        if (run_id, kind, name) in self._known:
            return
        with self._connect() as conn:
            if self._statements.part_exists.execute(conn, {"run_id": run_id, "kind": kind, "name": name}).first():
                self._known.add((run_id, kind, name))
                return
            self._raise_missing(conn, run_id, holder, name)

    def _holding_step(self, run_id: str, name: str) -> str:
        """The parent of branch ``name``: its name without the map value, which may hold dots.

        The longest recorded step whose name prefixes the branch's. When that is the longest
        candidate, no step recorded later can change the answer: it holds for every branch with
        the same candidates (all the items of a map), and is looked up once.
        """
        if (run_id, BRANCH, name) in self._parents:
            return self._parents[(run_id, BRANCH, name)]
        pieces = name.split(".")
        candidates = tuple(".".join(pieces[:cut]) for cut in range(1, len(pieces)))
        parent = self._longest_holders.get((run_id, candidates))
        if parent is None:
            parts = self._tables.parts
            query = sa.select(parts.c.internal_name).where(
                parts.c.run_id == run_id, parts.c.kind == STEP, parts.c.internal_name.in_(candidates)
            )
            with self._connect() as conn:
                found = [row[0] for row in conn.execute(query)]
                if not found:
                    self._raise_missing(conn, run_id, STEP, ".".join(pieces[:-1]))
            parent = max(found, key=len)
            if parent == candidates[-1]:
                self._longest_holders[(run_id, candidates)] = parent
        self._parents[(run_id, BRANCH, name)] = parent
        return parent

    @functools.cached_property
    def _parents(self) -> Dict[_Key, str]:
        return {}

    @functools.cached_property
    def _longest_holders(self) -> Dict[Tuple[str, Tuple[str, ...]], str]:
        return {}

    def _raise_missing(self, conn: Connection, run_id: str, kind: str, name: str) -> None:
        if self._statements.run_exists.execute(conn, {"run_id": run_id}).first() is None:
            raise RunLogNotFoundError(run_id)
        if kind == STEP:
            raise StepLogNotFoundError(run_id, name)
        raise BranchLogNotFoundError(run_id, name)

    def _subtree(self, run_id: str, kind: str, name: str) -> Optional[Union[StepLog, BranchLog]]:
        """The part ``(kind, name)`` with every part below it, or None when it is not recorded."""
        parts = self._tables.parts
        root = (
            sa.select(parts.c.id, parts.c.kind, parts.c.internal_name)
            .where(parts.c.run_id == run_id, parts.c.kind == kind, parts.c.internal_name == name)
            .cte("subtree", recursive=True)
        )
        child = parts.alias("child")
        below = sa.select(child.c.id, child.c.kind, child.c.internal_name).where(
            child.c.run_id == run_id, child.c.parent == root.c.internal_name, child.c.kind != root.c.kind
        )
        subtree = root.union_all(below)
        query = sa.select(parts).join(subtree, parts.c.id == subtree.c.id).order_by(parts.c.id)
        with self._connect() as conn:
            found = list(conn.execute(query).mappings())
        if not found:
            if not self.run_log_exists(run_id):
                raise RunLogNotFoundError(run_id)
            return None
        with self.reading(run_id):
            assembled: Dict[Tuple[str, str], Any] = rows.assemble(found)
        part: Union[StepLog, BranchLog] = assembled[(kind, name)]
        return part


def _no_secret(name: str) -> str:  # pragma: no cover - guarded by DatabaseRunLogStore.url
    raise ConfigurationError(f"secret '{name}' asked for without a secrets backend")

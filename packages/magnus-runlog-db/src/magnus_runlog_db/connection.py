"""From a configured connection string to an engine, and from driver errors to errors people act on.

The connection string is an SQLAlchemy URL whose parts may name secrets (``${db_password}``):
each is replaced by the secret's value from the run's secrets backend, in the parsed URL (so a
value holding ``@`` or ``/`` needs no quoting). The resolved URL lives in memory only; every
message and summary shows the configured text as core's :func:`magnus.credentials.redacted_url`
shows it: a literal password and credential-like query values (``?password=``, ``sslpassword``)
as ``***``. A URL that parsers would read differently (an unencoded ``@`` in a password, which
SQLAlchemy would take for part of the host) is refused without being shown, also when it is the
value of a secret.

Engines are shared by the stores of one process with the same URL and pool settings, and never
cross a ``fork``: a child process gets new connections (SQLAlchemy's pool is not fork-safe).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any, Callable, Dict, Iterator, NoReturn, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from magnus.credentials import PLACEHOLDER, hidden_in, unparseable, url_credentials, url_problem
from magnus.errors import ConfigurationError, RunLogError

FIELD = "run_log_store.config.connection_string"
POSTGRES_HINT = "pip install 'magnus-runlog-db[postgres]'"
_DEFAULT_PORTS: Dict[str, int] = {"postgresql": 5432}


class RunLogDatabaseError(RunLogError):
    """The run log database could not be used (unreachable, refused us, failed mid-run)."""


class SchemaTooNewError(RunLogError):
    """The database's schema was written by a newer magnus-runlog-db than the one installed."""


def placeholders(connection_string: str) -> Iterator[str]:
    """Names of the secrets a connection string refers to, in order."""
    return (match.group(1) for match in PLACEHOLDER.finditer(connection_string))


def resolve_url(connection_string: str, secret: Callable[[str], str]) -> URL:
    """The URL with every ``${name}`` replaced by ``secret(name)``.

    A connection string that is one placeholder (``${DATABASE_URL}``) is the secret's URL.

    Raises:
        ConfigurationError: the text is not an SQLAlchemy URL (the message never shows a secret).
    """
    whole = PLACEHOLDER.fullmatch(connection_string.strip())
    if whole:
        return _parse(secret(whole.group(1)), shown=f"the URL in secret '{whole.group(1)}'")
    url = _parse(connection_string, shown="")

    def fill(text: Optional[str]) -> Optional[str]:
        return None if text is None else PLACEHOLDER.sub(lambda match: secret(match.group(1)), text)

    query: Dict[str, Any] = {key: fill(value) if isinstance(value, str) else value for key, value in url.query.items()}
    return url.set(
        username=fill(url.username),
        password=fill(url.password),
        host=fill(url.host),
        database=fill(url.database),
        query=query,
    )


def _parse(text: str, shown: str) -> URL:
    """The SQLAlchemy URL of ``text``; ``shown`` names where it came from ('' for the configured text).

    No message shows ``text``: it may hold a password.
    """
    field = f"{FIELD}: {shown}" if shown else FIELD
    problem = url_problem(text)
    if problem:
        raise ConfigurationError(f"{field}: {unparseable(problem)}")
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigurationError(
            f"{field}: not a database URL, not shown: it may hold a password "
            "(e.g. postgresql+psycopg://user:${db_password}@host:5432/magnus or sqlite:///runs.db)"
        ) from None
    # Plain postgresql:// means psycopg 3 here (SQLAlchemy's own default is psycopg2).
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigurationError(f"{field}: '{url.get_backend_name()}' is not supported (postgresql or sqlite)")
    return url


def where(url: URL) -> str:
    """``host:port`` of a server, or the file of an SQLite database, for messages."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite database '{url.database or ':memory:'}'"
    port = url.port or _DEFAULT_PORTS.get(url.get_backend_name())
    return f"{url.host or 'localhost'}:{port}"


# ---- engines -----------------------------------------------------------------------------------------
_ENGINES: Dict[Tuple[Any, ...], Engine] = {}
_LOCK = threading.Lock()
# Per thread: the connection kept open for single statements, by id of its engine.
_KEPT = threading.local()


def _forget_engines_in_child() -> None:
    # The parent's connections belong to the parent: drop them without closing (that would
    # close the parent's sockets too), and start afresh.
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()
    _KEPT.__dict__.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)


def engine_for(url: URL, pool_size: int, connect_timeout: int, durable: bool = True) -> Engine:
    """The process's engine for ``url`` (created on first use).

    ``durable=False`` (PostgreSQL): the sessions commit without waiting for the server's disk
    flush (``synchronous_commit=off``): a crash of the *server* may lose the last fraction of a
    second of commits (never half of one); a crash of our process loses nothing committed.
    Writes that must survive anyway ask for the flush per transaction (:func:`flush_on_commit`).

    Raises:
        ConfigurationError: the driver of the URL is not installed.
    """
    key = (url.render_as_string(hide_password=False), pool_size, connect_timeout, durable)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _create_engine(url, pool_size, connect_timeout, durable)
            _ENGINES[key] = engine
        return engine


def autocommit_connection(engine: Engine) -> Connection:
    """This process's connection to ``engine`` for statements that are their own transaction.

    Kept open between statements (a checkout from the pool and its reset on return cost more
    than a small statement), in autocommit: a statement is one round trip, no ``BEGIN`` and no
    ``COMMIT``. One per thread, and never across a ``fork``. A connection the server dropped
    is replaced at the next statement (after the error that told of it).
    """
    kept: Dict[int, Connection] = _KEPT.__dict__.setdefault("connections", {})
    connection = kept.get(id(engine))
    if connection is None or connection.invalidated or connection.closed:
        if connection is not None:
            connection.close()
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        kept[id(engine)] = connection
    return connection


def _create_engine(url: URL, pool_size: int, connect_timeout: int, durable: bool) -> Engine:
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url, connect_timeout)
        connect_args: Dict[str, Any] = {"connect_timeout": connect_timeout, "application_name": "magnus"}
        if not durable:
            connect_args["options"] = "-c synchronous_commit=off"  # set at connect: no extra round trip
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args)
    except ImportError as missing:
        raise ConfigurationError(
            f"run_log_store db: the driver of '{url.drivername}' is not installed ({missing.name or missing}): "
            f"{POSTGRES_HINT}"
        ) from None


def _sqlite_engine(url: URL, connect_timeout: int) -> Engine:
    """SQLite with real transactions: each begins ``IMMEDIATE`` (the write lock, waited for up to
    ``connect_timeout`` seconds), so concurrent writers queue instead of failing; WAL lets readers
    of other processes go on meanwhile. ``synchronous=NORMAL``: a crashed process loses nothing
    committed; a power loss may lose the last transactions (as the file stores without fsync)."""
    database = url.database or ""
    if database and database != ":memory:":
        folder = os.path.dirname(os.path.abspath(database))
        os.makedirs(folder, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": connect_timeout})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(connect_timeout * 1000)}")
        _switch_to_wal(cursor, connect_timeout)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cursor: Any, connect_timeout: int) -> None:
    """``PRAGMA journal_mode = WAL``, tried again while another process holds the database.

    Switching a new database to WAL needs it to itself, and SQLite answers "database is locked" at
    once rather than waiting the busy timeout: processes opening one database together (workers
    claiming a run) wait their turn here, up to ``connect_timeout`` seconds, as any write does.
    """
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def flush_on_commit(connection: sa.Connection) -> None:
    """Make the current transaction wait for the server's disk flush at commit (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO on")


# ---- errors -----------------------------------------------------------------------------------------
def raise_database_error(error: sa.exc.DBAPIError, url: URL, connect_timeout: int) -> NoReturn:
    """Raise what ``error`` means for the person running the pipeline; never shows the password."""
    detail = _first_line(str(error.orig) if error.orig is not None else str(error))
    detail = hidden_in(detail, url_credentials(url.render_as_string(hide_password=False)))
    lowered = detail.lower()
    place = where(url)
    if "password authentication failed" in lowered or "authentication failed" in lowered or "no password" in lowered:
        raise RunLogDatabaseError(
            f"run log database at {place}: authentication failed for user '{url.username}': "
            "check the user and the password secret of run_log_store.config.connection_string"
        ) from None
    if "does not exist" in lowered and "database" in lowered:
        raise RunLogDatabaseError(f"run log database at {place}: {detail} (create it, or fix the URL)") from None
    if error.connection_invalidated or _is_unreachable(lowered):
        raise RunLogDatabaseError(
            f"run log database at {place} unreachable (connect_timeout {connect_timeout} s): {detail}"
        ) from None
    raise RunLogDatabaseError(f"run log database at {place}: {detail}") from None


_UNREACHABLE = (
    "connection refused",
    "timeout expired",
    "could not translate host name",
    "could not connect",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "the database system is shutting down",
    "unable to open database file",
    "database is locked",
    "no route to host",
    "consuming input failed",
)


def _is_unreachable(lowered: str) -> bool:
    return any(sign in lowered for sign in _UNREACHABLE)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # psycopg puts the server's reason after the address line: keep both, briefly.
    return " ".join(lines[:2]) if lines else "unknown error"

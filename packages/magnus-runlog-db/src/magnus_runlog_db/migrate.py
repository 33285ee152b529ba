"""The schema of a ``db_name`` prefix: created on first use, upgraded with the shipped migrations.

Each process checks once per engine and prefix: one read of ``<prefix>_schema_version``. Only
when the schema is missing or older does it import Alembic and upgrade, holding a lock for the
whole upgrade (a PostgreSQL advisory lock; SQLite's write lock) and looking again once it has
it, so processes starting together upgrade once. A schema at a revision this package does not
know was written by a newer magnus-runlog-db and is refused: nothing is written to it.
"""

from __future__ import annotations

import threading
import zlib
from typing import Optional, Set, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from magnus_runlog_db.connection import SchemaTooNewError
from magnus_runlog_db.schema import KNOWN_REVISIONS, SCHEMA_REVISION, version_table

SCRIPT_LOCATION = "magnus_runlog_db:migrations"

_CHECKED: Set[Tuple[int, str]] = set()
_LOCK = threading.Lock()


def ensure_schema(engine: Engine, prefix: str) -> None:
    """Make the schema of ``prefix`` current, once per engine and process.

    Raises:
        SchemaTooNewError: the database is at a revision newer than this package knows.
    """
    key = (id(engine), prefix)
    if key in _CHECKED:
        return
    with _LOCK:
        if key in _CHECKED:
            return
        with engine.connect() as connection:
            current = current_revision(connection, prefix)
            connection.rollback()
        if current != SCHEMA_REVISION:
            _refuse_newer(current, prefix)
            upgrade(engine, prefix, SCHEMA_REVISION)
        _CHECKED.add(key)


def current_revision(connection: Connection, prefix: str) -> Optional[str]:
    """The revision recorded for ``prefix``; None when the schema was never created."""
    table = version_table(prefix)
    if not sa.inspect(connection).has_table(table):
        return None
    found = connection.execute(sa.text(f"SELECT version_num FROM {table}")).scalar()
    return None if found is None else str(found)


def upgrade(engine: Engine, prefix: str, revision: str) -> None:
    """Upgrade the schema of ``prefix`` to ``revision`` (used directly by tests and operators)."""
    from alembic import command
    from alembic.config import Config

    with engine.connect() as connection:
        with connection.begin():
            _lock(connection, prefix)
            current = current_revision(connection, prefix)
            _refuse_newer(current, prefix)
            if current is not None and KNOWN_REVISIONS.index(current) >= KNOWN_REVISIONS.index(revision):
                return
            config = Config()
            config.set_main_option("script_location", SCRIPT_LOCATION)
            config.attributes["connection"] = connection
            config.attributes["prefix"] = prefix
            command.upgrade(config, revision)


def _lock(connection: Connection, prefix: str) -> None:
    """Serialise upgrades of one prefix (SQLite: the transaction already holds the write lock)."""
    if connection.dialect.name == "postgresql":
        key = zlib.crc32(f"magnus-runlog-db:{prefix}".encode())
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _refuse_newer(current: Optional[str], prefix: str) -> None:
    if current is not None and current not in KNOWN_REVISIONS:
        from magnus_runlog_db.version import __version__

        raise SchemaTooNewError(
            f"run log tables '{prefix}_*' are at schema revision {current}, newer than magnus-runlog-db "
            f"{__version__} knows (up to {SCHEMA_REVISION}): upgrade magnus-runlog-db where this runs "
            "(pip install -U magnus-runlog-db)"
        )

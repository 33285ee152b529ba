"""The tables of the store, at the newest schema revision (``SCHEMA_REVISION``).

Three tables per ``db_name`` prefix, one row per part of a run log::

    <prefix>_runs            the run's own fields (run_id, status, tag, ...), its run_config, its summary
    <prefix>_parameters      one row per (run, parameter name)
    <prefix>_parts           one row per step or branch log, without its children
    <prefix>_index           executed steps by cache key and by the hash of each file they put
    <prefix>_schema_version  Alembic's version table (its revision of this schema)

A part is keyed by ``(run_id, kind, internal_name)`` and records the internal name of the part
that holds it (``parent``: a branch for a step, a step for a branch, ``''`` for the run's own
steps), so a run log is reassembled by following keys, never by splitting names (a map value may
hold dots: ``0.5`` beside ``0``). Writers of different parts write different rows; a part is
replaced by one ``INSERT ... ON CONFLICT DO UPDATE``, so it is atomic and keeps the row's ``id``,
which orders siblings as they were first written.

These definitions are what queries use; the migrations in ``magnus_runlog_db/migrations`` create
the same tables (a test compares them).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import sqlalchemy as sa

# The Alembic revision these tables are at; ``migrations/versions`` ends with it.
SCHEMA_REVISION = "0004"
# Every revision the package knows, oldest first: a database at any other one is newer than us.
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004")

STEP = "step"
BRANCH = "branch"

DEFAULT_PREFIX = "magnus_runlog"
PREFIX_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")

# BIGINT on PostgreSQL; SQLite numbers rows only with an INTEGER PRIMARY KEY.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Tables(NamedTuple):
    metadata: sa.MetaData
    runs: sa.Table
    parameters: sa.Table
    parts: sa.Table
    version_table: str
    step_index: sa.Table


def version_table(prefix: str) -> str:
    return f"{prefix}_schema_version"


@functools.cache
def tables(prefix: str) -> Tables:
    """The tables of the store under ``prefix`` (one set per prefix and process)."""
    metadata = sa.MetaData()
    runs = sa.Table(
        f"{prefix}_runs",
        metadata,
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("dag_hash", sa.String(), nullable=True),
        sa.Column("use_cached", sa.Boolean(), nullable=False),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("original_run_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("run_config", sa.Text(), nullable=False),
        # Revision 0002: when the run was created and last changed (set by the store, in the database's clock).
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        # Revision 0003: the run's summary (JSON), written with its final status; NULL while it runs.
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Index(f"ix_{prefix}_runs_status", "status"),
        sa.Index(f"ix_{prefix}_runs_tag", "tag"),
        sa.Index(f"ix_{prefix}_runs_created_at", "created_at"),
    )
    parameters = sa.Table(
        f"{prefix}_parameters",
        metadata,
        sa.Column("run_id", sa.String(), sa.ForeignKey(runs.c.run_id, ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    parts = sa.Table(
        f"{prefix}_parts",
        metadata,
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(), sa.ForeignKey(runs.c.run_id, ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("internal_name", sa.String(), nullable=False),
        sa.Column("parent", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("run_id", "kind", "internal_name", name=f"uq_{prefix}_parts_key"),
        sa.Index(f"ix_{prefix}_parts_parent", "run_id", "parent"),
    )
    # Revision 0004: executed steps by cache key (kind 'key') and by the hash of each file they put ('put').
    index = sa.Table(
        f"{prefix}_index",
        metadata,
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("digest", sa.String(), primary_key=True),
        sa.Column("run_id", sa.String(), sa.ForeignKey(runs.c.run_id, ondelete="CASCADE"), primary_key=True),
        sa.Column("internal_name", sa.String(), primary_key=True),
        sa.Column("ended", sa.String(), nullable=False),
    )
    return Tables(metadata, runs, parameters, parts, version_table(prefix), index)

"""The one statement that differs between PostgreSQL and SQLite: ``INSERT ... ON CONFLICT``."""

from __future__ import annotations

from typing import Any, List, Union

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

Insert = Union[postgresql.Insert, sqlite.Insert]


def insert_for(dialect: Dialect, table: sa.Table) -> Insert:
    """An insert of ``table`` that can say what to do on a key conflict, in ``dialect``."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(insert: Insert, keys: List[str], update: List[str]) -> Any:
    """``insert`` that, when a row with the same ``keys`` exists, sets its ``update`` columns (none: keeps it)."""
    if not update:
        return insert.on_conflict_do_nothing(index_elements=keys)
    excluded = insert.excluded
    return insert.on_conflict_do_update(index_elements=keys, set_={name: excluded[name] for name in update})

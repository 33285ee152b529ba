"""The one statement that differs between PostgreSQL and SQLite: ``INSERT ... ON CONFLICT``."""

from __future__ import annotations

from typing import Union

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

Insert = Union[postgresql.Insert, sqlite.Insert]


def insert_for(dialect: Dialect, table: sa.Table) -> Insert:
    """An insert of ``table`` that can say what to do on a key conflict, in ``dialect``."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)

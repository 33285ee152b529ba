"""The run log store contract of magnus, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from conftest import PostgresServer, StoreFactory, store_factory

from magnus.datastore.base import BaseRunLogStore
from magnus.testing import RunLogStoreContract
from magnus_runlog_db.store import DatabaseRunLogStore


class SpoilsRows:
    """``spoil_step`` of the run log store contract: the step's row with its JSON cut in half."""

    def spoil_step(self, store: BaseRunLogStore, run_id: str, internal_name: str) -> None:
        assert isinstance(store, DatabaseRunLogStore)
        parts = store._tables.parts
        row = sa.and_(parts.c.run_id == run_id, parts.c.kind == "step", parts.c.internal_name == internal_name)
        with store._engine.begin() as connection:
            body = connection.execute(sa.select(parts.c.body).where(row)).scalar_one()
            connection.execute(parts.update().where(row).values(body=body[: len(body) // 2]))


class TestSQLiteContract(SpoilsRows, RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, tmp_path: Any) -> StoreFactory:
        # Eight processes race to create the schema and queue for SQLite's one write lock: on a
        # loaded two-core machine the last can wait longer than the default 10 s.
        return store_factory(f"sqlite:///{tmp_path}/runs.db", connect_timeout=60)


@pytest.mark.postgres
class TestPostgresContract(SpoilsRows, RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, postgres: PostgresServer, pg_database: str) -> StoreFactory:
        return store_factory(postgres.url(pg_database))

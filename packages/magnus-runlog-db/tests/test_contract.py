"""The run log store contract of magnus, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PostgresServer, StoreFactory, store_factory

from magnus.testing import RunLogStoreContract


class TestSQLiteContract(RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, tmp_path: Any) -> StoreFactory:
        return store_factory(f"sqlite:///{tmp_path}/runs.db")


@pytest.mark.postgres
class TestPostgresContract(RunLogStoreContract):
    persistent = True
    concurrent_writers = True

    @pytest.fixture
    def make_store(self, postgres: PostgresServer, pg_database: str) -> StoreFactory:
        return store_factory(postgres.url(pg_database))

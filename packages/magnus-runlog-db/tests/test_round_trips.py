"""What a map item costs the server: one statement per store call, no transaction around it.

The speed of the store on PostgreSQL is its number of round trips (``bench/runlog_db.py``):
this counts them, so a change that adds one shows here and not only in a noisy benchmark.
"""

from __future__ import annotations

from typing import Any, List

import pytest
import sqlalchemy as sa
from conftest import PostgresServer, store_factory

from magnus.datastore.models import BranchLog, StepLog


@pytest.mark.postgres
def test_a_map_item_is_one_statement_per_call(postgres: PostgresServer, pg_database: str) -> None:
    store = store_factory(postgres.url(pg_database))()
    store.create_run_log("run-1")
    store.set_parameters("run-1", {"items": [0, 0.5]})
    store.add_step_log("run-1", StepLog(name="map", internal_name="map", status="PROCESSING"))
    store.add_branch_log("run-1", BranchLog(internal_name="map.0", status="PROCESSING"))  # looks up 'map' once

    statements: List[str] = []
    transactions: List[str] = []
    engine = store._engine
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    sa.event.listen(engine, "begin", lambda *args: transactions.append("BEGIN"))

    def item(value: str) -> Any:
        branch = f"map.{value}"
        store.add_branch_log("run-1", BranchLog(internal_name=branch, status="PROCESSING"))
        store.add_step_log("run-1", StepLog(name="work", internal_name=f"{branch}.work", status="PROCESSING"))
        parameters = store.get_parameters("run-1")
        store.add_step_log("run-1", StepLog(name="work", internal_name=f"{branch}.work", status="SUCCESS"))
        store.update_branch_log_status("run-1", branch, "SUCCESS")
        store.add_step_log("run-1", StepLog(name="success", internal_name=f"{branch}.success", status="SUCCESS"))
        return parameters

    assert item("1") == {"items": [0, 0.5]}
    assert (len(statements), transactions) == (6, [])

    item("0.5")  # a value with a dot: the step holding its branch is looked up (is 'map.0' a step?)
    statuses = store.get_branch_statuses("run-1", "map")
    assert statuses == {"map.0": "PROCESSING", "map.1": "SUCCESS", "map.0.5": "SUCCESS"}
    branch = store.get_branch_log("run-1", "map.0.5")
    assert isinstance(branch, BranchLog) and list(branch.steps) == ["map.0.5.work", "map.0.5.success"]

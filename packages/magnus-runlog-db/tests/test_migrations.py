"""The schema: created on first use, upgraded by the shipped migrations, refused when newer."""

from __future__ import annotations

import json
import multiprocessing

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import PostgresServer

from magnus import defaults
from magnus_runlog_db.connection import SchemaTooNewError, engine_for, resolve_url
from magnus_runlog_db.migrate import SCRIPT_LOCATION, current_revision, upgrade
from magnus_runlog_db.schema import KNOWN_REVISIONS, SCHEMA_REVISION, tables, version_table
from magnus_runlog_db.store import DatabaseRunLogStore

PREFIX = "magnus_runlog"


def _engine(url: str) -> sa.Engine:
    return engine_for(resolve_url(url, lambda name: ""), pool_size=2, connect_timeout=5)


def test_the_package_knows_the_head_of_its_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == SCHEMA_REVISION == KNOWN_REVISIONS[-1]
    assert [revision.revision for revision in reversed(list(script.walk_revisions()))] == list(KNOWN_REVISIONS)


def test_the_migrations_build_the_tables_the_store_queries(backend_url: str) -> None:
    DatabaseRunLogStore(connection_string=backend_url).run_log_exists("x")  # creates the schema
    with _engine(backend_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": version_table(PREFIX)})
        differences = compare_metadata(context, tables(PREFIX).metadata)
    assert differences == []


def test_runs_written_at_revision_1_read_back_after_the_upgrade(backend_url: str) -> None:
    engine = _engine(backend_url)
    upgrade(engine, PREFIX, "0001")
    step = {"name": "a", "internal_name": "a", "step_type": "task", "mock": False, "code_identities": [],
            "attempts": [], "user_defined_metrics": {"x": 1}, "data_catalog": []}  # fmt: skip
    with engine.begin() as connection:  # what magnus-runlog-db at revision 0001 wrote
        connection.execute(
            sa.text(
                f"INSERT INTO {PREFIX}_runs (run_id, dag_hash, use_cached, tag, original_run_id, status, run_config)"
                " VALUES ('old-run', 'h', :false, 'old', '', 'SUCCESS', '{\"tag\": \"old\"}')"
            ),
            {"false": False},
        )
        connection.execute(sa.text(f"INSERT INTO {PREFIX}_parameters VALUES ('old-run', 'x', '[1, 0.5]')"))
        connection.execute(
            sa.text(
                f"INSERT INTO {PREFIX}_parts (run_id, kind, internal_name, parent, status, message, body)"
                " VALUES ('old-run', 'step', 'a', '', 'SUCCESS', '', :body)"
            ),
            {"body": json.dumps(step)},
        )
    with engine.connect() as connection:
        assert current_revision(connection, PREFIX) == "0001"

    store = DatabaseRunLogStore(connection_string=backend_url)
    run_log = store.get_run_log_by_id("old-run")  # first use upgrades
    assert (run_log.status, run_log.tag, run_log.parameters) == (defaults.SUCCESS, "old", {"x": [1, 0.5]})
    assert run_log.steps["a"].user_defined_metrics == {"x": 1}
    with engine.connect() as connection:
        assert current_revision(connection, PREFIX) == SCHEMA_REVISION
        created = connection.execute(sa.text(f"SELECT created_at FROM {PREFIX}_runs")).scalar()
    assert created is not None
    store.create_run_log("new-run")
    assert sorted(_run_ids(engine)) == ["new-run", "old-run"]


def _run_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(sa.text(f"SELECT run_id FROM {PREFIX}_runs"))]


def test_a_newer_schema_is_refused_without_writing(backend_url: str) -> None:
    DatabaseRunLogStore(connection_string=backend_url).create_run_log("run-1")
    engine = _engine(backend_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {version_table(PREFIX)} SET version_num = '0099'"))
    fresh = DatabaseRunLogStore(connection_string=backend_url, pool_size=3)  # another process, in effect
    with pytest.raises(SchemaTooNewError, match=r"revision 0099, newer than magnus-runlog-db .*pip install -U"):
        fresh.run_log_exists("run-1")


def test_prefixes_are_separate_stores(backend_url: str) -> None:
    first = DatabaseRunLogStore(connection_string=backend_url, db_name="team_a")
    second = DatabaseRunLogStore(connection_string=backend_url, db_name="team_b")
    first.create_run_log("run-1")
    assert not second.run_log_exists("run-1")
    second.create_run_log("run-1")


def _first_use(url: str, number: int) -> None:
    store = DatabaseRunLogStore(connection_string=url, db_name="together")
    store.create_run_log(f"run-{number}")
    store.set_parameters(f"run-{number}", {"ok": True})


@pytest.mark.postgres
def test_processes_starting_together_create_the_schema_once(postgres: PostgresServer, pg_database: str) -> None:
    """Six processes meet an empty database at once: one creates the schema, none fails."""
    url = postgres.url(pg_database)
    context = multiprocessing.get_context("spawn")  # nothing of this process's engines is inherited
    processes = [context.Process(target=_first_use, args=(url, number)) for number in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    store = DatabaseRunLogStore(connection_string=url, db_name="together")
    assert sorted(store.get_parameters(f"run-{number}") == {"ok": True} for number in range(6)) == [True] * 6

"""Secrets in the connection string, and errors a person can act on (real servers, no mocks)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List

import pytest
from conftest import PASSWORD, PostgresServer, free_port, store_factory
from runs_helpers import project, run

from magnus.errors import ConfigurationError, MagnusError, SecretNotFoundError
from magnus.reach import Reach
from magnus_runlog_db.connection import RunLogDatabaseError
from magnus_runlog_db.store import DatabaseRunLogStore

SECRET_URL = "postgresql+psycopg://postgres:${db_password}@127.0.0.1:{port}/{database}"


def _secret_url(postgres: PostgresServer, database: str) -> str:
    return SECRET_URL.replace("{port}", str(postgres.port)).replace("{database}", database)


@pytest.mark.postgres
def test_secrets_fill_the_url_and_stay_out_of_the_summary(postgres: PostgresServer, pg_database: str) -> None:
    store = store_factory(_secret_url(postgres, pg_database), secrets={"db_password": PASSWORD})()
    store.create_run_log("run-1")
    assert store.run_log_exists("run-1")
    summary = json.dumps(store.get_summary())
    assert "${db_password}" in summary and PASSWORD not in summary
    assert PASSWORD not in repr(store) and PASSWORD not in str(store.model_dump())


def test_a_literal_password_is_masked_in_the_summary(tmp_path: Path) -> None:
    store = DatabaseRunLogStore(connection_string="postgresql+psycopg://app:hunter2-pass@db.example:5432/magnus")
    assert "hunter2-pass" not in json.dumps(store.get_summary())
    assert "app:***@db.example" in store.get_summary()["connection_string"]


def test_the_location_a_person_is_shown_names_the_table_and_hides_the_password() -> None:
    store = DatabaseRunLogStore(connection_string="postgresql+psycopg://app:hunter2-pass@db.example:5432/magnus")
    location = store.location("run-7")
    assert "hunter2-pass" not in location
    assert location == "postgresql+psycopg://app:***@db.example:5432/magnus, table magnus_runlog_runs, run_id 'run-7'"


def test_a_secret_with_url_characters_needs_no_quoting() -> None:
    store = DatabaseRunLogStore(connection_string="postgresql://app:${pw}@${host}:5432/magnus")
    store.resolve_secrets({"pw": "p@ss/w:rd", "host": "db.internal"}.__getitem__)
    assert (store.url.password, store.url.host, store.url.drivername) == (
        "p@ss/w:rd",
        "db.internal",
        "postgresql+psycopg",
    )


def test_a_whole_url_in_a_secret() -> None:
    store = DatabaseRunLogStore(connection_string="${DATABASE_URL}")
    store.resolve_secrets({"DATABASE_URL": "sqlite:///x/runs.db"}.__getitem__)
    assert store.url.database == "x/runs.db" and store.local_paths() == ["x"]


def test_unknown_secret_and_missing_backend_are_named() -> None:
    store = DatabaseRunLogStore(connection_string="postgresql://app:${nope}@h/db")
    with pytest.raises(ConfigurationError, match=r"names secrets \(nope\)"):
        store.run_log_exists("x")

    def backend(name: str) -> str:
        raise SecretNotFoundError(name, "dotenv")

    with pytest.raises(SecretNotFoundError, match="'nope'"):
        store.resolve_secrets(backend)


def test_bad_urls_and_prefixes_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        DatabaseRunLogStore(connection_string="mysql://u:secret-pw@h/db").run_log_exists("x")
    with pytest.raises(ConfigurationError, match="not a database URL") as refused:
        DatabaseRunLogStore(connection_string="no url at all").run_log_exists("x")
    assert "secret-pw" not in str(refused.value)
    with pytest.raises(ValueError, match="prefix"):
        DatabaseRunLogStore(db_name="runs; drop table x")


def test_local_paths_and_reach() -> None:
    sqlite = DatabaseRunLogStore(connection_string="sqlite:///logs/runs.db")
    assert (sqlite.local_paths(), sqlite.reach()) == (["logs"], Reach.MACHINE)
    server = DatabaseRunLogStore(connection_string="postgresql://u@h/db")
    assert (server.local_paths(), server.reach()) == ([], Reach.ANYWHERE)
    assert DatabaseRunLogStore(connection_string="sqlite://").reach() == Reach.PROCESS


def test_an_unreachable_server_is_named_within_the_timeout() -> None:
    port = free_port()  # nothing listens there
    store = DatabaseRunLogStore(connection_string=f"postgresql+psycopg://app:${{pw}}@127.0.0.1:{port}/db")
    store.resolve_secrets({"pw": "Never-Shown-9"}.__getitem__)
    start = time.monotonic()
    with pytest.raises(RunLogDatabaseError) as refused:
        store.run_log_exists("x")
    assert time.monotonic() - start < store.connect_timeout
    message = str(refused.value)
    assert f"127.0.0.1:{port} unreachable" in message and "Never-Shown-9" not in message


def test_a_silent_host_times_out_within_connect_timeout() -> None:
    # 10.255.255.1 is not routed on these machines: the connection attempt hangs until the timeout.
    store = DatabaseRunLogStore(connection_string="postgresql+psycopg://app@10.255.255.1:5432/db", connect_timeout=1)
    start = time.monotonic()
    with pytest.raises(RunLogDatabaseError, match=r"10\.255\.255\.1:5432 unreachable"):
        store.run_log_exists("x")
    assert time.monotonic() - start < 5


@pytest.mark.postgres
def test_a_wrong_password_names_the_user_not_the_password(postgres: PostgresServer, pg_database: str) -> None:
    store = store_factory(_secret_url(postgres, pg_database), secrets={"db_password": "Wrong-Password-1"})()
    with pytest.raises(RunLogDatabaseError) as refused:
        store.run_log_exists("x")
    message = str(refused.value)
    assert "authentication failed for user 'postgres'" in message
    assert "Wrong-Password-1" not in message and PASSWORD not in message


@pytest.mark.postgres
def test_a_missing_database_is_named(postgres: PostgresServer) -> None:
    with pytest.raises(RunLogDatabaseError, match="does not exist"):
        store_factory(postgres.url("no_such_database"))().run_log_exists("x")


def test_a_missing_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if magnus-runlog-db[postgres] was not installed
    store = DatabaseRunLogStore(connection_string=f"postgresql+psycopg://u@127.0.0.1:{free_port()}/db")
    with pytest.raises(ConfigurationError, match=r"pip install 'magnus-runlog-db\[postgres\]'"):
        store.run_log_exists("x")


def test_errors_through_the_cli_are_one_line(tmp_path: Path) -> None:
    folder = project(tmp_path, f"postgresql+psycopg://app:${{pw}}@127.0.0.1:{free_port()}/db")
    done = run(folder, "-f", "line.yaml")
    assert done.returncode != 0
    # The do-nothing secrets backend has no 'pw': refused before anything runs, naming the key.
    assert done.stderr.strip().count("\n") == 0 and "'pw'" in done.stderr, done.stderr
    assert issubclass(RunLogDatabaseError, MagnusError)


@pytest.mark.postgres
def test_the_cli_reads_the_password_from_the_secrets_backend(
    postgres: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    pytest.importorskip("magnus_secrets", reason="needs a secrets backend plugin (magnus-secrets)")
    import yaml

    folder = project(tmp_path, _secret_url(postgres, pg_database))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["secrets"] = {"type": "env-secrets-manager", "config": {"prefix": "MAGNUS_TEST_"}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    done = run(folder, "-f", "line.yaml", "--run-id", "with-secret", env={"MAGNUS_TEST_db_password": PASSWORD})
    assert done.returncode == 0, done.stderr
    store = store_factory(_secret_url(postgres, pg_database), secrets={"db_password": PASSWORD})()
    run_log = store.get_run_log_by_id("with-secret")
    assert PASSWORD not in run_log.model_dump_json()
    assert run_log.run_config["run_log_store"]["connection_string"] == _secret_url(postgres, pg_database)


@pytest.mark.parametrize(
    ("url", "state"),
    [
        ("sqlite:///runs.db", ["runs.db", "runs.db-journal", "runs.db-wal", "runs.db-shm"]),
        ("sqlite:///logs/runs.db", ["logs/runs.db", "logs/runs.db-journal", "logs/runs.db-wal", "logs/runs.db-shm"]),
        ("sqlite://", []),
        ("postgresql://user@db.example/runs", []),
    ],
)
def test_a_catalog_put_skips_the_database_files_not_their_folder(url: str, state: List[str]) -> None:
    """An SQLite database in the project folder: puts from that folder skip the database only."""
    assert DatabaseRunLogStore(connection_string=url).state_paths() == state


# ---- credentials in the URL (issue 31) -----------------------------------------------------------------
QUERY_URL = (
    "postgresql+psycopg://app@db.example:5432/magnus?password=Query-Pass-1&sslpassword=Key-Pass-2&sslmode=prefer"
)


def test_a_password_given_as_a_query_parameter_is_masked_in_the_summary_and_location() -> None:
    store = DatabaseRunLogStore(connection_string=QUERY_URL)
    shown = json.dumps(store.get_summary()) + store.location("run-7")
    assert "Query-Pass-1" not in shown and "Key-Pass-2" not in shown
    assert store.get_summary()["connection_string"] == (
        "postgresql+psycopg://app@db.example:5432/magnus?password=***&sslpassword=***&sslmode=prefer"
    )


def test_an_at_sign_in_a_password_is_refused_when_the_config_is_read_without_showing_it(tmp_path: Path) -> None:
    """SQLAlchemy takes 'ss-Tail-42@127.0.0.1' for the host: the error line showed the password's tail."""
    written = f"postgresql+psycopg://app:p@ss-Tail-42@127.0.0.1:{free_port()}/db"
    import sqlalchemy as sa

    assert sa.make_url(written).host.startswith("ss-Tail-42")  # what a parser that is not told reads
    folder = project(tmp_path, written)
    done = run(folder, "-f", "line.yaml")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "Error: config.yaml: run_log_store.config.connection_string: unparseable URL (more than one '@' before "
        "the host: write an '@' in the user or password as %40), not shown: it may hold a password"
    ]
    with pytest.raises(ValueError) as refused:  # in code too, pydantic does not quote the value
        DatabaseRunLogStore(connection_string=written)
    assert "Tail" not in str(refused.value)


def test_an_at_sign_in_the_password_of_a_url_held_by_a_secret_is_refused_without_showing_it() -> None:
    store = DatabaseRunLogStore(connection_string="${DATABASE_URL}")
    secret = {"DATABASE_URL": f"postgresql://app:p@ss-Tail-42@127.0.0.1:{free_port()}/db"}
    with pytest.raises(ConfigurationError) as refused:
        store.resolve_secrets(secret.__getitem__)
    message = str(refused.value)
    assert message.startswith("run_log_store.config.connection_string: the URL in secret 'DATABASE_URL': unparseable")
    assert "Tail" not in message


@pytest.mark.postgres
def test_a_query_password_reaches_the_server_and_neither_the_run_log_nor_the_console(
    postgres: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/{pg_database}?password={PASSWORD}"
    folder = project(tmp_path, url)
    done = run(folder, "-f", "line.yaml", "--run-id", "query-password")
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert f"{pg_database}?password=***, table" in done.stdout + done.stderr  # the run's summary line
    run_log = store_factory(url)().get_run_log_by_id("query-password")
    assert PASSWORD not in run_log.model_dump_json()
    assert run_log.run_config["run_log_store"]["connection_string"].endswith("?password=***")

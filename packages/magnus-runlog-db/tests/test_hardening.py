"""Rows that do not read back, and listing runs in one query (issue 31, classes 8 and 19), on
SQLite and a real PostgreSQL server, through ``python -m magnus`` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, List

import pytest
import sqlalchemy as sa
from conftest import store_factory
from runs_helpers import environment, project, run

from magnus.datastore.listing import summarize
from magnus_runlog_db.store import DatabaseRunLogStore

# What a damaged row holds: never to be shown in a message.
PRIVATE = "s3cr3t-payload"


def magnus(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "magnus", *args],
        cwd=folder,
        env=environment(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def finished(backend_url: str, tmp_path: Path) -> Path:
    """A project whose database holds two finished runs of a map, ``fine`` and ``damaged``."""
    folder = project(tmp_path, backend_url, items=[1, 2])
    for run_id in ("fine", "damaged"):
        done = run(folder, "-f", "map.yaml", "-p", "parameters.yaml", "--run-id", run_id)
        assert done.returncode == 0, done.stderr
    return folder


def execute(store: DatabaseRunLogStore, statement: Any) -> None:
    with store._engine.begin() as connection:
        connection.execute(statement)


def step_body_cut(store: DatabaseRunLogStore) -> str:
    parts = store._tables.parts
    row = sa.and_(parts.c.run_id == "damaged", parts.c.internal_name == "map.1.work", parts.c.kind == "step")
    execute(store, parts.update().where(row).values(body=sa.func.substr(parts.c.body, 1, 40)))
    return "the row of step 'map.1.work': not JSON"


def step_body_of_another_shape(store: DatabaseRunLogStore) -> str:
    parts = store._tables.parts
    row = sa.and_(parts.c.run_id == "damaged", parts.c.internal_name == "map.1.work", parts.c.kind == "step")
    execute(store, parts.update().where(row).values(body=json.dumps({"attempts": PRIVATE})))
    return "the row of step 'map.1.work': name: Field required (and 2 more)"


def parameter_garbled(store: DatabaseRunLogStore) -> str:
    parameters = store._tables.parameters
    row = sa.and_(parameters.c.run_id == "damaged", parameters.c.name == "items")
    execute(store, parameters.update().where(row).values(value=f"[{PRIVATE}"))
    return "the row of parameter 'items': not JSON"


def run_config_of_another_kind(store: DatabaseRunLogStore) -> str:
    runs = store._tables.runs
    execute(store, runs.update().where(runs.c.run_id == "damaged").values(run_config=json.dumps([PRIVATE])))
    return "the run's row: run_config: a JSON list, not an object"


DAMAGES = [step_body_cut, step_body_of_another_shape, parameter_garbled, run_config_of_another_kind]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_row_refuses_its_run_in_one_line(
    finished: Path, backend_url: str, damage: Callable[[DatabaseRunLogStore], str]
) -> None:
    store = store_factory(backend_url)()
    reason = damage(store)
    expected = f"run 'damaged': its run log in {store.location('damaged')} is not readable: {reason}"
    commands: List[List[str]] = [
        ["runs", "show", "damaged", "-c", "config.yaml"],
        ["runs", "report", "damaged", "-o", "r.html", "-c", "config.yaml"],
        ["execute", "-c", "config.yaml", "-f", "map.yaml", "--run-id", "again", "--use-cached", "damaged"],
    ]
    for command in commands:
        result = magnus(finished, *command)
        assert result.returncode == 2, result.stderr
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert expected in line and "internal error" not in result.stderr, line
        assert PRIVATE not in result.stderr + result.stdout
    assert not store.run_log_exists("again")


@pytest.mark.parametrize("damage", [step_body_cut, parameter_garbled])
def test_listing_names_a_damaged_run_it_has_to_read(
    finished: Path, backend_url: str, damage: Callable[[DatabaseRunLogStore], str]
) -> None:
    """A finished run is listed from its row; one without a summary (running, recorded before
    revision 0003) from its parts' rows, and a damaged one is named on stderr."""
    store = store_factory(backend_url)()
    runs = store._tables.runs
    execute(store, runs.update().values(summary=None))
    reason = damage(store)
    listed = magnus(finished, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    rows = [row.split()[0] for row in listed.stdout.splitlines()[1:]]
    if damage is parameter_garbled:  # listing does not read parameters
        assert sorted(rows) == ["damaged", "fine"] and listed.stderr == ""
        return
    assert rows == ["fine"]
    (skipped,) = listed.stderr.splitlines()
    assert skipped.startswith(
        f"skipped run 'damaged': its run log in {store.location('damaged')} is not readable: {reason}"
    )


def test_the_line_naming_an_unreadable_run_is_shown_escaped(finished: Path, backend_url: str) -> None:
    """A row edited by hand may name its part with characters that drive a terminal: they are escaped."""
    store = store_factory(backend_url)()
    parts = store._tables.parts
    execute(store, parts.update().where(parts.c.run_id == "damaged").values(body="{"))
    execute(
        store, parts.update().where(parts.c.run_id == "damaged").values(internal_name=parts.c.internal_name + "\x1b[2J")
    )
    execute(store, store._tables.runs.update().values(summary=None))
    listed = magnus(finished, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    (skipped,) = listed.stderr.splitlines()
    assert "\x1b" not in skipped and "\\x1b[2J': not JSON" in skipped, skipped


def test_listing_finished_runs_is_one_query(finished: Path, backend_url: str) -> None:
    store = store_factory(backend_url)()
    expected = sorted((summarize(store.get_run_log_by_id(run_id)) for run_id in ("damaged", "fine")), key=str)
    lister = store_factory(backend_url)()
    lister.run_log_exists("warm-up")  # the schema check and the connection, done once per process
    statements: List[str] = []
    sa.event.listen(lister._engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    listing = lister.list_runs()
    assert sorted(listing.runs, key=str) == expected and listing.unreadable == []
    queries = [statement for statement in statements if not statement.startswith("BEGIN")]  # SQLite's write lock
    assert len(queries) == 1 and "_parts" not in queries[0], statements


def test_runs_recorded_before_summaries_are_listed_from_their_parts(finished: Path, backend_url: str) -> None:
    store = store_factory(backend_url)()
    runs = store._tables.runs
    execute(store, runs.update().values(summary=None))
    listed = {summary.run_id: summary for summary in store.list_runs().runs}
    assert sorted(listed) == ["damaged", "fine"]
    for run_id, summary in listed.items():
        assert summary == summarize(store.get_run_log_by_id(run_id)) and summary.end is not None


def test_no_summary_is_kept_from_parts_that_do_not_read_back(finished: Path, backend_url: str) -> None:
    """The run's final status is written all the same; listing then reads the parts and names the run."""
    store = store_factory(backend_url)()
    step_body_cut(store)
    store.update_run_log_status("damaged", "FAIL")
    assert store.get_run_log_by_id("damaged", full=False).status == "FAIL"
    listing = store.list_runs()
    assert [summary.run_id for summary in listing.runs] == ["fine"]
    assert [error.run_id for error in listing.unreadable] == ["damaged"]

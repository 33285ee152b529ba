"""Rows that do not read back (issue 31, class 8), on SQLite and a real PostgreSQL server, through
``python -m magnus`` as a user runs it."""

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
def test_listing_names_a_damaged_run_and_lists_the_others(
    finished: Path, backend_url: str, damage: Callable[[DatabaseRunLogStore], str]
) -> None:
    store = store_factory(backend_url)()
    reason = damage(store)
    listed = magnus(finished, "runs", "list", "-c", "config.yaml")
    assert listed.returncode == 0, listed.stderr
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == ["fine"]
    (skipped,) = listed.stderr.splitlines()
    assert skipped.startswith(
        f"skipped run 'damaged': its run log in {store.location('damaged')} is not readable: {reason}"
    )
    assert PRIVATE not in listed.stderr

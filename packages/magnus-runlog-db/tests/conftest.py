"""A private PostgreSQL 15 server for the session, and store factories over it and over SQLite.

The server is the real thing (SERVICES.md): ``initdb`` and ``pg_ctl`` run as the ``postgres``
user (initdb refuses root) on a free loopback port, password authentication over TCP (so a
wrong password is refused, as on a real server); ``postgresql`` is apt-installed when missing.
It is stopped with ``pg_ctl stop`` in the teardown.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List

import pytest

from magnus_runlog_db.store import DatabaseRunLogStore

PASSWORD = "pg-Secret-7f3a"
SERVER_USER = "postgres"


@dataclass
class PostgresServer:
    folder: str
    port: int
    bin: str

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql+psycopg://{SERVER_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def run(self, *command: str, check: bool = True) -> "subprocess.CompletedProcess[str]":
        return _as_postgres([os.path.join(self.bin, command[0]), *command[1:]], check=check)

    def createdb(self, name: str) -> None:
        self.run("createdb", "-h", self.folder, "-p", str(self.port), "-U", SERVER_USER, name)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.folder, "log"), "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", self.data, "stop", "-m", "fast", "-w", check=False)

    @property
    def data(self) -> str:
        return os.path.join(self.folder, "data")


def _as_postgres(command: List[str], check: bool = True) -> "subprocess.CompletedProcess[str]":
    prefix = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, check=check, capture_output=True, text=True)


def _postgres_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("PostgreSQL is not installed and cannot be installed here (apt-get install postgresql)")
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, capture_output=True, env=env)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(bin_folder: str = "") -> PostgresServer:
    """A new private server on a free loopback port, password authentication over TCP."""
    folder = tempfile.mkdtemp(prefix="magnus-pg-")
    os.chmod(folder, 0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, SERVER_USER, SERVER_USER)
    server = PostgresServer(folder=folder, port=free_port(), bin=bin_folder or _postgres_bin())
    password_file = os.path.join(folder, "password")
    with open(password_file, "w") as handle:
        handle.write(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(password_file, SERVER_USER, SERVER_USER)
    server.run(
        "initdb", "-D", server.data, "-U", SERVER_USER, "--auth-local=trust", "--auth-host=scram-sha-256",
        f"--pwfile={password_file}",
    )  # fmt: skip
    server.start()
    return server


def remove_server(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_server()
    try:
        yield server
    finally:
        remove_server(server)


@pytest.fixture
def pg_database(postgres: PostgresServer) -> str:
    """A new, empty database of the session's server: its name."""
    name = "t_" + uuid.uuid4().hex[:12]
    postgres.createdb(name)
    return name


StoreFactory = Callable[[], DatabaseRunLogStore]


def store_factory(connection_string: str, secrets: Dict[str, str] | None = None, **config: object) -> StoreFactory:
    """New store objects over one database, as separate processes of one run would make them."""

    def make() -> DatabaseRunLogStore:
        store = DatabaseRunLogStore(connection_string=connection_string, **config)  # type: ignore[arg-type]
        if secrets is not None:
            store.resolve_secrets(secrets.__getitem__)
        return store

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh database of each kind: an SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.url(request.getfixturevalue("pg_database"))


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)

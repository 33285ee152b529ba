"""A real two-node Ray cluster for the session: a head and a node with the custom resource ``node_b``.

Both nodes run on this machine with one CPU each and a small object store (a 2-core machine runs
the suite); the cluster listens on a free port and keeps its files in a fresh temporary folder,
so a second session, or one after a crash, never meets stale state. It is stopped by the ids of
the processes it started (:mod:`magnus_executor_ray.cluster`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from magnus.testing.signals import restore_ctrl_c
from magnus_executor_ray.cluster import LocalCluster

restore_ctrl_c()  # a test sends Ctrl-C, even when the run started with it ignored


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(tmp_path_factory.mktemp("ray"))
    previous = {name: os.environ.get(name) for name in started.environment}
    os.environ.update(started.environment)  # for the runs of the tests, and the processes they start
    try:
        started.start()
        started.add_node("node_b", cpus=1, resources={"node_b": 1})
        yield started
    finally:
        started.stop()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path

"""A real one-node SLURM cluster for the session: munge, slurmctld and slurmd, stopped by PID.

SLURM and munge are apt-installed when ``slurmctld`` is missing (a fresh CI machine, as root).
The cluster's files (``slurm.conf``, state, logs, the ``jobcomp`` record of finished jobs) live
in a fresh temporary folder and it listens on free ports, so a second session, or one after a
crash left daemons behind, never meets stale state. ``SLURM_CONF`` is set in ``os.environ`` for
the tests: every SLURM command the executor runs talks to this cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from magnus.testing.signals import restore_ctrl_c
from magnus_executor_slurm.cluster import LocalCluster

restore_ctrl_c()  # a test sends Ctrl-C, even when the run started with it ignored


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(tmp_path_factory.mktemp("slurm"))
    previous = os.environ.get("SLURM_CONF")
    try:
        started.start()
        os.environ.update(started.environment)
        yield started
    finally:
        started.stop()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path

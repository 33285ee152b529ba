"""A private Ray cluster of several nodes on this machine, for tests and benchmarks.

:class:`LocalCluster` starts a head (``ray start --head``) on a free port, its files in a folder of
its own, and more nodes joining it (``ray start --address=...``), each with its CPUs, memory and
custom resources (``{"node_b": 1}``), so a task asking for ``node_b`` runs on that node. Each node
is one ``ray start --block`` process in a session of its own, holding that node's Ray processes:
stopping the cluster ends those sessions, by their ids (the agents of a raylet outlive it, so they
are ended with their session, not through it). Nothing else on the machine is touched: ``ray
stop`` would end every Ray of the machine.

Node deaths are detected within seconds (the GCS health check runs every second here, not every
few seconds), so a test killing a node's raylet sees its tasks fail promptly. The cluster runs
without token authentication (its drivers set :attr:`LocalCluster.environment`), so what
``~/.ray`` holds on the machine does not change it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

_STARTED = "Ray runtime started"
# The GCS declares a node dead after this many missed health checks, one per period.
HEALTH_CHECK = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
# No token authentication, whatever ~/.ray/auth_token holds: Ray turns it on when that file exists
# (a local ray.init() writes one), and a node or a driver reading it differently is refused.
NO_AUTHENTICATION = {"RAY_AUTH_MODE": "disabled"}
OBJECT_STORE_BYTES = 100_000_000
# Tries to start a node: Ray gives up on a raylet that has not registered within 30 s.
STARTS = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray_command() -> List[str]:
    """``ray`` of this environment (beside its python)."""
    beside = Path(sys.executable).parent / "ray"
    return [str(beside)] if beside.exists() else [shutil.which("ray") or "ray"]


@dataclass
class Node:
    """One node: its ``ray start --block`` process (the leader of its session) and its resources."""

    name: str
    process: "subprocess.Popen[str]"
    resources: Dict[str, float]

    def raylet_pid(self) -> Optional[int]:
        """The PID of the node's raylet, found among the processes of its session."""
        for pid in _session_members(self.process.pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet":
                    return pid
        return None


class LocalCluster:
    """A head and any number of nodes on this machine; the nodes' output lives in ``folder``.

    Ray's own files (its sockets among them) live in a short folder of ``/tmp`` made at start and
    removed at stop: a socket's path may not exceed 107 bytes, which a test's folder can
    (``/tmp/pytest-of-root/pytest-940/popen-gw0/ray0/session_.../sockets/plasma_store.1``).
    """

    def __init__(self, folder: Path, head_cpus: float = 1, object_store_bytes: int = OBJECT_STORE_BYTES) -> None:
        self.folder = folder
        self.temp_dir: Optional[Path] = None
        self.port = _free_port()
        self.head_cpus = head_cpus
        self.object_store_bytes = object_store_bytes
        self.nodes: List[Node] = []

    @property
    def environment(self) -> Dict[str, str]:
        """What the processes connecting to the cluster (drivers) need in their environment."""
        return dict(NO_AUTHENTICATION)

    @property
    def address(self) -> str:
        """What ``ray.init(address=...)`` and the executor's ``address`` take."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the head; the nodes are added with :meth:`add_node`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        for attempt in range(1, STARTS + 1):
            try:
                head = ["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}", "--include-dashboard=false"]
                self._start("head", head, self.head_cpus, {})
                return
            except RuntimeError:
                if attempt == STARTS:
                    raise
                self.port = _free_port()  # the port may be held until the failed head's processes are gone

    def add_node(self, name: str, cpus: float = 1, resources: Optional[Dict[str, float]] = None) -> Node:
        """A node joining the head with ``cpus`` CPUs and custom ``resources``."""
        for attempt in range(1, STARTS + 1):
            try:
                return self._start(name, [f"--address={self.address}"], cpus, resources or {})
            except RuntimeError:
                if attempt == STARTS:
                    raise
        raise AssertionError("unreachable")

    def _start(
        self, name: str, where: List[str], cpus: float, resources: Dict[str, float], timeout: float = 120
    ) -> Node:
        """Start one node; a node that did not start is stopped (Ray gives a raylet 30 s to register,
        which a busy machine can miss), and RuntimeError says why."""
        arguments = [
            *_ray_command(),
            "start",
            *where,
            "--block",
            f"--num-cpus={cpus}",
            f"--resources={json.dumps(resources)}",
            f"--object-store-memory={self.object_store_bytes}",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
        ]
        output = self.folder / f"{name}.log"
        with open(output, "w") as log:
            process = subprocess.Popen(
                arguments,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                env={**os.environ, **HEALTH_CHECK, **NO_AUTHENTICATION},
            )
        node = Node(name, process, resources)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while _STARTED not in output.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                said = output.read_text()
                self.stop_node(node)
                raise RuntimeError(f"ray node {name} did not start:\n{said[-3000:]}")
            time.sleep(0.2)
        return node

    def kill_raylet(self, node: Node) -> int:
        """Kill the raylet of ``node`` (SIGKILL), as a crash or the out-of-memory killer would; its PID."""
        pid = node.raylet_pid()
        assert pid is not None, f"node {node.name} has no raylet"
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop_node(self, node: Node, grace: float = 10.0) -> None:
        """End every process of the node's session: SIGTERM, then SIGKILL after ``grace`` seconds."""
        session = node.process.pid
        for sent in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(session, sent)
            deadline = time.monotonic() + grace
            while _session_members(session) and time.monotonic() < deadline:
                time.sleep(0.2)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(0)
            if not _session_members(session):
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.process.wait(grace)
        if node in self.nodes:
            self.nodes.remove(node)

    def stop(self) -> None:
        """Stop every node, the head last, and remove Ray's files."""
        for node in reversed(list(self.nodes)):
            self.stop_node(node)
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc: Optional[object]) -> None:
        self.stop()


def _session_members(session: int) -> List[int]:
    """The live processes of session ``session`` (zombies left out)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session and fields[0] != "Z":  # fields: state, ppid, pgrp, session
                members.append(int(entry.name))
    return members

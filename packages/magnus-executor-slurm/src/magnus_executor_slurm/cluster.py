"""A private one-node SLURM cluster on this machine, for tests and benchmarks.

:class:`LocalCluster` starts munge (when no munge daemon answers), ``slurmctld`` and ``slurmd``
from a ``slurm.conf`` written to a folder of its own, on free ports, and stops what it started by
PID. It installs the Debian packages first when ``slurmctld`` is missing (root only). Commands
find the cluster through ``SLURM_CONF`` (:attr:`LocalCluster.environment`).

The configuration keeps no accounting (``sacct`` answers "accounting storage is disabled", as at
sites without ``slurmdbd``) and records every finished job with ``jobcomp/filetxt`` in
:attr:`LocalCluster.jobcomp_log`, the scheduler's own account of what was submitted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
MUNGE_SOCKET_DIR = Path("/run/munge")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install() -> None:
    """``apt-get install`` SLURM and munge when ``slurmctld`` is missing.

    Raises:
        RuntimeError: not installed and not installable here (not root, no apt).
    """
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"SLURM is not installed: apt-get install {' '.join(PACKAGES)} (as root)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, env=environment)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        check=True,
        capture_output=True,
        env=environment,
    )


class LocalCluster:
    """munge, ``slurmctld`` and ``slurmd`` of a one-node cluster whose files live in ``folder``."""

    def __init__(self, folder: Path, partition: str = "debug") -> None:
        self.folder = folder
        self.partition = partition
        self.node = socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.jobcomp_log = folder / "jobcomp.log"
        self._started: List[subprocess.Popen[bytes]] = []
        self._pid_files: List[Path] = []

    @property
    def environment(self) -> Dict[str, str]:
        """What every SLURM command needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def write_conf(self) -> None:
        folder = self.folder
        for sub in ("state", "spool"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        lines = [
            "ClusterName=magnus-test",
            f"SlurmctldHost={self.node}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerParameters=sched_min_interval=0",
            "MinJobAge=300",
            "KillWait=5",
            "InactiveLimit=0",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_log}",
            f"NodeName={self.node} CPUs={os.cpu_count() or 1} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 60.0) -> None:
        """Install when needed, start the daemons, wait until the node is idle.

        Raises:
            RuntimeError: a daemon did not start or the node did not come up in ``timeout``.
        """
        install()
        self.write_conf()
        self._start_munge()
        environment = {**os.environ, **self.environment}
        for daemon, pid_file in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            arguments = [daemon, "-D"] + (["-c"] if daemon == "slurmctld" else [])
            log = open(self.folder / f"{daemon}.out", "wb")
            self._started.append(subprocess.Popen(arguments, env=environment, stdout=log, stderr=log))
            self._pid_files.append(self.folder / pid_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self._started:
                if process.poll() is not None:
                    raise RuntimeError(f"a SLURM daemon exited ({process.returncode}): see {self.folder}/*.log")
            state = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node did not come up in {timeout:.0f} s: see {self.folder}/*.log")

    def _start_munge(self) -> None:
        if subprocess.run(["sh", "-c", "munge -n | unmunge"], capture_output=True).returncode == 0:
            return  # a munge daemon already answers: use it, leave it running
        MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
        process = subprocess.Popen(
            ["runuser", "-u", "munge", "--", "munged", "-F"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._started.insert(0, process)
        deadline = time.monotonic() + 20
        while subprocess.run(["sh", "-c", "munge -n | unmunge"], capture_output=True).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("munged did not start (is /etc/munge/munge.key there?)")
            time.sleep(0.2)

    def run(self, *command: str, check: bool = True) -> "subprocess.CompletedProcess[str]":
        """Run a SLURM command against this cluster."""
        return subprocess.run(
            list(command), capture_output=True, text=True, check=check, env={**os.environ, **self.environment}
        )

    def stop(self) -> None:
        """Cancel what is left, stop the daemons this cluster started (by PID), newest first."""
        self.run("scancel", "--full", "--user", str(os.getuid()), check=False)
        for process in reversed(self._started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self._started.clear()

    def completed_jobs(self) -> List[Dict[str, str]]:
        """The scheduler's record of finished jobs (``jobcomp/filetxt``): one mapping of fields per job."""
        if not self.jobcomp_log.exists():
            return []
        records: List[Dict[str, str]] = []
        for line in self.jobcomp_log.read_text().splitlines():
            fields: Dict[str, str] = {}
            for part in line.split():
                key, _, value = part.partition("=")
                fields[key] = value
            records.append(fields)
        return records

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc: Optional[object]) -> None:
        self.stop()

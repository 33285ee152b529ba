"""What W&B wrote offline, read with wandb's own reader (``wandb leet inspect --json``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple


@dataclass
class WandbRun:
    """One W&B run as its ``.wandb`` file holds it."""

    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: List[str] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)
    history: List[Dict[str, Any]] = field(default_factory=list)
    summary: Dict[str, Any] = field(default_factory=dict)
    exit_code: int = -1

    def series(self, key: str, x: str = "magnus_step") -> List[Tuple[int, float]]:
        """``key``'s points as (x, value), in the order logged."""
        return [(row[x], row[key]) for row in self.history if key in row]


def _wandb() -> str:
    return shutil.which("wandb", path=str(Path(sys.executable).parent)) or "wandb"


def read_run(folder: Path) -> WandbRun:
    """The run written in ``folder`` (``<dir>/wandb/offline-run-...``), from its ``run-<id>.wandb`` file."""
    (log,) = folder.glob("run-*.wandb")
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(
        [_wandb(), "leet", "inspect", "--json", str(log)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, f"wandb leet inspect {folder}: {done.stderr}"
    printed = done.stdout
    run = WandbRun()
    for line in printed.splitlines():
        record = json.loads(line)
        kind = record["type"]
        if kind == "run":
            found = record["run"]
            run.name, run.group, run.job_type = found["display_name"], found.get("run_group", ""), found["job_type"]
            run.tags = found.get("tags", [])
            run.config.update({k: v for k, v in found["config"]["update"].items() if k != "_wandb"})
        elif kind == "config":
            run.config.update(record["config"].get("update", {}))
        elif kind == "history":
            run.history.append(record["history"]["item"])
        elif kind == "summary":
            run.summary.update(record["summary"].get("update", {}))
        elif kind == "exit":
            run.exit_code = record["exit"].get("exit_code", 0)
    return run


def read_group(directory: Path, group: str) -> Dict[str, WandbRun]:
    """The W&B runs of magnus run ``group`` under ``directory``, by their name."""
    runs = [read_run(folder) for folder in sorted((directory / "wandb").glob("offline-run-*"))]
    return {run.name: run for run in runs if run.group == group}

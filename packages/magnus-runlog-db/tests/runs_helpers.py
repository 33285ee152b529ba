"""Pipelines run by the real ``magnus`` command against the db store (in a scratch folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import yaml

STEPS = """
import os
import pathlib
import time


def first():
    with open("first.count", "a") as handle:
        handle.write("x")


def slow():
    pathlib.Path("slow.started").touch()
    while os.environ.get("SLOW_WAITS") and not pathlib.Path("slow.go").exists():
        time.sleep(0.05)


def last():
    pass


def work(item):
    pass
"""

LINE = {
    "dag": {
        "start_at": "first",
        "steps": {
            "first": {"type": "task", "command": "steps.first", "next": "slow"},
            "slow": {"type": "task", "command": "steps.slow", "next": "last"},
            "last": {"type": "task", "command": "steps.last", "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
}

MAP = {
    "dag": {
        "start_at": "map",
        "steps": {
            "map": {
                "type": "map",
                "iterate_on": "items",
                "iterate_as": "item",
                "branch": {
                    "start_at": "work",
                    "steps": {
                        "work": {"type": "task", "command": "steps.work", "next": "success"},
                        "success": {"type": "success"},
                        "fail": {"type": "fail"},
                    },
                },
                "next": "success",
            },
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
}


def project(folder: Path, connection_string: str, max_workers: int = 1, items: Optional[List[object]] = None) -> Path:
    """A scratch project: steps module, pipelines, parameters and a config using the db store."""
    (folder / "steps.py").write_text(STEPS)
    (folder / "line.yaml").write_text(yaml.safe_dump(LINE))
    (folder / "map.yaml").write_text(yaml.safe_dump(MAP))
    (folder / "parameters.yaml").write_text(yaml.safe_dump({"items": items or [0, 0.5, 1]}))
    config = {
        "executor": {"type": "local", "config": {"max_workers": max_workers}},
        "run_log_store": {"type": "db", "config": {"connection_string": connection_string, "connect_timeout": 3}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def magnus(folder: Path, *args: str, env: Optional[Dict[str, str]] = None, **popen: object) -> List[str]:
    return [sys.executable, "-m", "magnus", "execute", "-c", "config.yaml", *args]


def python_path(folder: Path) -> str:
    """``folder`` (the project's steps) first, then the ``PYTHONPATH`` the tests run with (the code under test)."""
    return os.pathsep.join(part for part in (str(folder), os.environ.get("PYTHONPATH", "")) if part)


def environment(folder: Path) -> Dict[str, str]:
    """This process's environment, with :func:`python_path` (for processes started by hand)."""
    return {**os.environ, "PYTHONPATH": python_path(folder)}


def run(
    folder: Path, *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 300
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        magnus(folder, *args),
        cwd=folder,
        env={**environment(folder), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )

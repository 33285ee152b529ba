"""Two small trackers for core's tests, installed as plugins by ``test_trackers.py``: one keeps
what it receives in a JSON-lines file, one posts it to an HTTP server (which may not answer)."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any, ClassVar, Dict, Optional

from magnus.tracker import BaseExperimentTracker

LAUNCHED_FOR = "RECORDING_TRACKER_UNIT"


class JsonLinesTracker(BaseExperimentTracker):
    """Appends one JSON line per call to ``path``."""

    service_name: ClassVar[str] = "jsonl"
    path: str

    def _write(self, **record: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        self._write(call="start_run", run=run_id, tag=tag, parameters=parameters or {})

    def end_run(self, status: str) -> None:
        self._write(call="end_run", status=status)

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        self._write(call="start_step", run=run_id, step=step, launched_for=os.environ.get(LAUNCHED_FOR, ""))

    def launch_environment(self, unit: str) -> Dict[str, str]:
        """What a process doing ``unit`` elsewhere receives: the unit's name, recorded by ``start_step``."""
        return {LAUNCHED_FOR: unit}

    def end_step(self, step: str, status: str) -> None:
        self._write(call="end_step", step=step, status=status)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self._write(call="metric", key=key, value=value, step=step)

    def log_parameter(self, key: str, value: Any) -> None:
        self._write(call="parameter", key=key, value=value)


class HttpTracker(BaseExperimentTracker):
    """Posts each metric to ``url`` (a tracking server; in the tests, one that does not answer)."""

    service_name: ClassVar[str] = "http"
    url: str

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        body = json.dumps({"key": key, "value": value, "step": step}).encode()
        urllib.request.urlopen(urllib.request.Request(self.url, data=body), timeout=5).close()


class FailingTracker(BaseExperimentTracker):
    """Fails at one hook, ``fails_at`` (``start_step`` or ``end_step``), as a tracker whose server refuses."""

    service_name: ClassVar[str] = "failing"
    fails_at: str

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        if self.fails_at == "start_step":
            raise RuntimeError("the tracking server said no")

    def end_step(self, step: str, status: str) -> None:
        if self.fails_at == "end_step":
            raise RuntimeError("the tracking server said no")

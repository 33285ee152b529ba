"""The default run log store: in memory, gone when the process ends."""

from __future__ import annotations

from typing import ClassVar, Dict, List

from pydantic import PrivateAttr

from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.models import RunLog
from magnus.errors import RunLogNotFoundError


class BufferedRunLogStore(BaseRunLogStore):
    """Keeps run logs in this process's memory.

    Handy for trying a pipeline; nothing survives the process, so ``--use-cached`` and executors
    that run steps in other processes cannot use it.
    """

    service_name: ClassVar[str] = "buffered"

    def location(self, run_id: str) -> str:
        return "memory only (lost when the run ends)"

    _run_logs: Dict[str, RunLog] = PrivateAttr(default_factory=dict)

    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog:
        try:
            return self._run_logs[run_id]
        except KeyError:
            raise RunLogNotFoundError(run_id) from None

    def put_run_log(self, run_log: RunLog) -> None:
        self._run_logs[run_log.run_id] = run_log

    def run_log_exists(self, run_id: str) -> bool:
        return run_id in self._run_logs

    def run_ids(self) -> List[str]:
        """The runs of this process (another process, ``magnus runs`` included, sees none of them)."""
        return list(self._run_logs)

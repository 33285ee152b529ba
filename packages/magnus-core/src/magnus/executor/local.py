"""``executor: {type: local}``: every step runs in this process, one after another."""

from __future__ import annotations

from typing import ClassVar

from magnus.executor.base import BaseExecutor


class LocalExecutor(BaseExecutor):
    """Runs the whole pipeline in the process that started it (the default executor)."""

    service_name: ClassVar[str] = "local"

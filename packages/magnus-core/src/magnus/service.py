"""What every plugin (executor, run log store, catalog, secrets, tracker, pickler) shares."""

from __future__ import annotations

from typing import Any, ClassVar, Dict

from pydantic import BaseModel, ConfigDict


class BaseService(BaseModel):
    """A configurable plugin.

    The fields of a subclass are its ``config:`` block; unknown keys are refused
    (``extra="forbid"``) so a typo in a config file is an error, not a silently ignored setting.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    service_name: ClassVar[str] = ""
    service_type: ClassVar[str] = ""

    def get_summary(self) -> Dict[str, Any]:
        """What the run log's ``run_config`` records of this service."""
        return {
            "service_name": self.service_name,
            "service_type": self.service_type,
            **self.model_dump(mode="json"),
        }

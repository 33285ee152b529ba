"""``type: stub``: a placeholder step that succeeds without doing anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict

from pydantic import ConfigDict

from magnus import defaults
from magnus.datastore.models import StepAttempt
from magnus.nodes.base import ExecutableNode, finish_attempt, started_attempt

if TYPE_CHECKING:
    from magnus.context import RunContext
    from magnus.graph import ParseContext


class StubNode(ExecutableNode):
    """Stands in for a step not written yet; any extra fields (a command, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    node_type: ClassVar[str] = "stub"

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: "ParseContext", **identity: str) -> "StubNode":
        return cls(**config, **identity)

    def execute(
        self, context: "RunContext", map_variable: defaults.TypeMapVariable = None, mock: bool = False
    ) -> StepAttempt:
        return finish_attempt(started_attempt(), defaults.SUCCESS)

"""``type: stub``: a placeholder step that succeeds without doing anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict

from pydantic import ConfigDict

from magnus.nodes.base import ExecutableNode

if TYPE_CHECKING:
    from magnus.parse_context import ParseContext


class StubNode(ExecutableNode):
    """Stands in for a step not written yet; any extra fields (a command, ...) are accepted and ignored.

    It has no task: the step runner records a successful attempt.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    node_type: ClassVar[str] = "stub"

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: "ParseContext", **identity: str) -> "StubNode":
        return cls(**config, **identity)

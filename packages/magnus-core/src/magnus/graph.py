"""A pipeline as a graph of nodes: the steps of a dag, where it starts, and the branch it is.

Parsing and checking a ``dag:`` block into a graph is :mod:`magnus.parsing`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterator

from magnus import defaults
from magnus.errors import MagnusError, UserInputError

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode


class Graph:
    """A dag: named steps, where to start, and the branch it is (``''`` for the pipeline itself)."""

    def __init__(
        self,
        *,
        start_at: str,
        steps: Dict[str, "BaseNode"],
        name: str = "",
        description: str = "",
        internal_branch_name: str = "",
    ) -> None:
        self.start_at = start_at
        self.steps = steps
        self.name = name
        self.description = description
        self.internal_branch_name = internal_branch_name

    def get_node_by_name(self, name: str) -> "BaseNode":
        try:
            return self.steps[name]
        except KeyError:
            raise MagnusError(f"no step named '{name}' in {self.internal_branch_name or 'the pipeline'}") from None

    def _terminal(self, ends_with: str) -> "BaseNode":
        for node in self.steps.values():
            if node.is_terminal and node.ends_with == ends_with:
                return node
        raise MagnusError(f"no node ending with {ends_with} in {self.internal_branch_name or 'the pipeline'}")

    def get_success_node(self) -> "BaseNode":
        return self._terminal(defaults.SUCCESS)

    def get_fail_node(self) -> "BaseNode":
        return self._terminal(defaults.FAIL)

    def walk(self) -> Iterator["BaseNode"]:
        """Every node of this graph and of every graph nested in it."""
        for node in self.steps.values():
            yield node
            for branch in node.get_branches():
                yield from branch.walk()

    def find_node(self, internal_name: str) -> "BaseNode":
        """The node with this internal name anywhere in the graph (map parts as the placeholder)."""
        for node in self.walk():
            if node.internal_name == internal_name:
                return node
        raise UserInputError(f"no step with internal name '{internal_name}' in the pipeline")

"""``type: parallel``: named branches, each a full dag, all of which must succeed."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Mapping, Tuple

from pydantic import ConfigDict

from magnus import defaults
from magnus.graph import Graph
from magnus.names import path_name_problem
from magnus.nodes.base import resolve_map_placeholders
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.parse_context import ParseContext, ProblemsRecorded
from magnus.parsing import create_graph


def parse_named_branches(raw: Any, ctx: ParseContext, internal_name: str, field: str = "branches") -> Dict[str, Graph]:
    """``{name: dag}`` of a parallel or a conditional step, each dag parsed as branch ``<step>.<name>``.

    Names become parts of internal names and file names: no ``.``, ``%`` or unsafe characters.

    Raises:
        ProblemsRecorded: ``raw`` is not a non-empty mapping (what is wrong with a branch is recorded
            in ``ctx`` and the branch left out).
    """
    if not isinstance(raw, dict) or not raw:
        ctx.problem("required: a mapping of branch names to dags", field)
        raise ProblemsRecorded
    branches: Dict[str, Graph] = {}
    for branch_name, branch in raw.items():
        if "." in str(branch_name) or defaults.COMMAND_FRIENDLY_CHARACTER in str(branch_name):
            ctx.problem("branch names cannot contain '.' or '%'", field, branch_name)
            continue
        unsafe = path_name_problem(str(branch_name))
        if unsafe:
            ctx.problem(f"branch name {str(branch_name)!r} {unsafe}", field, branch_name)
            continue
        internal = f"{internal_name}.{branch_name}"
        branches[internal] = create_graph(branch, ctx.at(field, branch_name), internal)
    return branches


class ParallelNode(CompositeNode):
    """Runs every branch (``branches: {name: {start_at, steps}}``); branch logs are ``step.name``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    node_type: ClassVar[str] = "parallel"

    branches: Dict[str, Graph]

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: ParseContext, **identity: str) -> "ParallelNode":
        branches = parse_named_branches(config.get("branches"), ctx, identity["internal_name"])
        return cls(**{**config, "branches": branches}, **identity)

    def branch_runs(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> List[BranchRun]:
        return [
            BranchRun(resolve_map_placeholders(internal_name, map_variable), graph, map_variable)
            for internal_name, graph in self.branches.items()
        ]

    def labelled_branches(self) -> List[Tuple[str, Graph]]:
        return [(internal.rsplit(".", 1)[-1], graph) for internal, graph in self.branches.items()]

"""``type: conditional``: run one of several branches, chosen by the value of a run parameter."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from pydantic import ConfigDict, field_validator

from magnus import defaults
from magnus.errors import MagnusError
from magnus.graph import Graph
from magnus.nodes.base import resolve_map_placeholders
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.nodes.parallel import parse_named_branches
from magnus.parameters import plain_name_problem
from magnus.parse_context import ParseContext, ProblemsRecorded
from magnus.parsing import create_graph

# The label of the branch taken when no other matches; its branch log is ``step.default``.
DEFAULT_BRANCH = "default"


class ConditionalNode(CompositeNode):
    """Runs the branch whose name is the string form of parameter ``parameter`` (``str(value)``:
    ``True``, ``3``, ``small``), else ``default`` when given; its branch log is ``step.<name>``.

    Spelled as runnable 0.50 spells it, so pipelines port. The step's log says which branch was
    taken and the value that chose it; a value no branch matches, with no ``default``, fails the
    step naming the value and the branches there are. What the branch sets flows on, as a dag's does.
    Inside a branch (a map item), what the steps of that branch set is read before the run's
    parameters, so items deciding at once each decide by their own value.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    node_type: ClassVar[str] = "conditional"
    reads_parameters: ClassVar[bool] = True
    chooses_branch: ClassVar[bool] = True

    parameter: str
    branches: Dict[str, Graph]
    default: Optional[Graph] = None

    @field_validator("parameter")
    @classmethod
    def _plain(cls, name: str) -> str:
        problem = plain_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: ParseContext, **identity: str) -> "ConditionalNode":
        internal = identity["internal_name"]
        branches = parse_named_branches(config.get("branches"), ctx, internal)
        default = None
        if config.get("default") is not None:
            if f"{internal}.{DEFAULT_BRANCH}" in branches:
                ctx.problem(
                    f"a branch named '{DEFAULT_BRANCH}' and a default dag: name the branch otherwise", "branches"
                )
                raise ProblemsRecorded
            default = create_graph(config["default"], ctx.at("default"), f"{internal}.{DEFAULT_BRANCH}")
        return cls(**{**config, "branches": branches, "default": default}, **identity)

    def _labelled(self) -> Dict[str, Graph]:
        labelled = {internal.rsplit(".", 1)[-1]: graph for internal, graph in self.branches.items()}
        if self.default is not None:
            labelled[DEFAULT_BRANCH] = self.default
        return labelled

    def chosen(self, parameters: Mapping[str, Any]) -> Tuple[str, Any]:
        """The label of the branch the parameters choose, and the value that chose it.

        Raises:
            MagnusError: the parameter is not set, or no branch matches its value and there is no default.
        """
        if self.parameter not in parameters:
            known = ", ".join(sorted(parameters)) or "none"
            raise MagnusError(f"conditional '{self.name}': parameter '{self.parameter}' is not set (set: {known})")
        value = parameters[self.parameter]
        label = str(value)
        if f"{self.internal_name}.{label}" in self.branches:
            return label, value
        if self.default is not None:
            return DEFAULT_BRANCH, value
        names = ", ".join(internal.rsplit(".", 1)[-1] for internal in self.branches)
        raise MagnusError(
            f"conditional '{self.name}': no branch for {self.parameter} = {_shown(value)} "
            f"(branches: {names}; no default)"
        )

    def branch_runs(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> List[BranchRun]:
        label, _ = self.chosen(parameters)
        internal = f"{self.internal_name}.{label}"
        return [BranchRun(resolve_map_placeholders(internal, map_variable), self._labelled()[label], map_variable)]

    def decision(self, runs: Sequence[BranchRun], parameters: Mapping[str, Any]) -> str:
        label, value = self.chosen(parameters)
        return f"took branch '{label}': {self.parameter} = {_shown(value)}"

    def labelled_branches(self) -> List[Tuple[str, Graph]]:
        return list(self._labelled().items())


def _shown(value: Any) -> str:
    """A parameter's value as JSON (``"small"``, ``3``, ``true``), shortened past 80 characters."""
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 80 else f"{shown[:77]}..."

"""``type: loop``: run a branch again and again until a parameter says stop, at most ``max_iterations`` times."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Mapping, Tuple

from pydantic import ConfigDict, Field, field_validator

from magnus import defaults
from magnus.errors import MagnusError
from magnus.graph import Graph
from magnus.map_position import NAMES_KEY, MapPosition
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.nodes.map import parse_repeated_branch
from magnus.parameters import plain_name_problem
from magnus.parse_context import ParseContext

_UNSET = object()


class LoopNode(CompositeNode):
    """Runs ``branch`` with ``index_as`` = 0, 1, ... until ``break_on`` is true or ``max_iterations`` ran.

    Spelled as runnable 0.50 spells it. Each iteration is a branch log of its own, ``step.0``,
    ``step.1``..., its steps at a map position holding the index (as a map's items are), so the
    index reaches tasks as the parameter ``index_as``. Iterations run one after another: what one
    sets is in the run's parameters for the next, and after the loop. After each iteration the
    loop stops when ``break_on`` is true (as the iteration set it, else as the run's parameters
    hold it) or when it ran ``max_iterations`` times (a SUCCESS: the step's log says which ended
    it); an iteration that fails ends the loop, failed. A ``break_on`` that is set but not a
    boolean fails the step; one never set lets the loop run to ``max_iterations``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    node_type: ClassVar[str] = "loop"
    dynamic_branches: ClassVar[bool] = True
    reads_parameters: ClassVar[bool] = True
    iterates: ClassVar[bool] = True

    branch: Graph
    max_iterations: int = Field(strict=True, ge=1)
    break_on: str
    index_as: str

    @field_validator("break_on", "index_as")
    @classmethod
    def _plain(cls, name: str) -> str:
        problem = plain_name_problem(name)
        if problem:
            raise ValueError(problem)
        if name == NAMES_KEY:
            raise ValueError(f"'{NAMES_KEY}' is magnus's own key of a map position")
        return name

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: ParseContext, **identity: str) -> "LoopNode":
        branch = parse_repeated_branch(config, ctx, identity["internal_name"], "the dag to run in each iteration")
        return cls.model_validate({**config, "branch": branch, **identity})

    def iteration(self, index: int, map_variable: defaults.TypeMapVariable) -> BranchRun:
        """The branch run of iteration ``index`` (from 0) of the loop at ``map_variable``."""
        position = MapPosition.of(map_variable).within(self.index_as, index)
        return BranchRun(f"{self.step_log_name(map_variable)}.{index}", self.branch, position)

    def branch_runs(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> List[BranchRun]:
        """The first iteration: each next one is decided when the one before ended ([`after_iteration`][])."""
        return [self.iteration(0, map_variable)]

    def after_iteration(
        self, index: int, set_by_it: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> Tuple[bool, str]:
        """Whether the loop stops after iteration ``index`` succeeded, and why ('' when it goes on).

        ``set_by_it``: what the iteration set; ``parameters``: the run's parameters.

        Raises:
            MagnusError: ``break_on`` is set to something other than a boolean.
        """
        value = set_by_it.get(self.break_on, parameters.get(self.break_on, _UNSET))
        if value is not _UNSET and not isinstance(value, bool):
            raise MagnusError(
                f"loop '{self.name}': parameter '{self.break_on}' to break on must be a boolean, "
                f"got {type(value).__name__} {value!r} after iteration {index}"
            )
        if value is True:
            return True, f"stopped after iteration {index}: {self.break_on} is true"
        if index + 1 >= self.max_iterations:
            unset = f"; '{self.break_on}' was never set" if value is _UNSET else ""
            return True, f"stopped after iteration {index}: reached max_iterations ({self.max_iterations}){unset}"
        return False, ""

    def labelled_branches(self) -> List[Tuple[str, Graph]]:
        return [("loop", self.branch)]

"""``type: map``: run one branch for each value of a list parameter."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union, overload

from pydantic import ConfigDict, field_validator

from magnus import defaults
from magnus.errors import MagnusError, TaskFailedError
from magnus.graph import Graph
from magnus.map_position import NAMES_KEY, MapPosition, item_names
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.parameters import parameter_name_problem
from magnus.parse_context import ParseContext, ProblemsRecorded
from magnus.parsing import create_graph
from magnus.tasks.python import import_function

# The reducer that lists every iteration's value (built in; any other is a function path).
COLLECT = "collect"


def parse_repeated_branch(config: Dict[str, Any], ctx: ParseContext, internal_name: str, what: str) -> Graph:
    """The ``branch`` of a step that runs it again and again (a map's items, a loop's iterations),
    parsed as ``<step>.<placeholder>``: each run of it is named by its value or index.

    Raises:
        ProblemsRecorded: ``branch`` is not a mapping (``what`` it should be is recorded).
    """
    raw = config.get("branch")
    if not isinstance(raw, dict):
        ctx.problem(f"required: {what}", "branch")
        raise ProblemsRecorded
    return create_graph(raw, ctx.at("branch"), f"{internal_name}.{defaults.MAP_PLACEHOLDER}")


class MapNode(CompositeNode):
    """For each value of parameter ``iterate_on``, runs ``branch`` with that value as ``iterate_as``.

    The branch log of each iteration is named by its value, ``step.<value>``, unless another
    value of the list has that name too (``1`` and ``"1"``): then each gets a name of its own
    (``step.1`` and ``step.1~number``, see :mod:`magnus.map_position`).

    What the iterations set is merged into the run's parameters in iteration order, whatever order
    they end in (with workers, the order of their ends changes from run to run): the last
    iteration that sets a parameter gives its value, as when they run one after another (magnus
    0.5.1). With ``reducer: collect`` each parameter any iteration set becomes the list of every
    iteration's value, in iteration order (``None`` for an iteration that did not set it). With
    ``reducer: module.function`` (a function of the project, imported from the working folder as a
    task's is), each such parameter becomes what the function returns given that list.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)

    node_type: ClassVar[str] = "map"
    dynamic_branches: ClassVar[bool] = True
    reads_parameters: ClassVar[bool] = True

    iterate_on: str
    iterate_as: str
    branch: Graph
    reducer: Optional[str] = None

    @field_validator("reducer")
    @classmethod
    def _importable(cls, reducer: Optional[str]) -> Optional[str]:
        """``collect``, or the dotted path of a function that can be imported (checked before the run)."""
        if reducer is None or reducer == COLLECT:
            return reducer
        try:
            import_function(reducer)
        except TaskFailedError as exc:
            raise ValueError(f"'collect' or a function path (module.function): {exc}") from None
        return reducer

    @field_validator("iterate_as")
    @classmethod
    def _names_a_parameter(cls, name: str) -> str:
        """Each value is the parameter ``iterate_as`` of its branch's steps (``MAGNUS_PRM_<iterate_as>``),
        in a map position beside magnus's own key of item names."""
        if name == NAMES_KEY:
            raise ValueError(f"'{NAMES_KEY}' is magnus's own key of a map position")
        problem = parameter_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: ParseContext, **identity: str) -> "MapNode":
        branch = parse_repeated_branch(config, ctx, identity["internal_name"], "the dag to run for each value")
        return cls(**{**config, "branch": branch}, **identity)

    def iteration_values(self, parameters: Mapping[str, Any]) -> List[Any]:
        """The list to iterate on, from the run's parameters.

        Raises:
            MagnusError: the parameter is not set or is not a list.
        """
        if self.iterate_on not in parameters:
            known = ", ".join(sorted(parameters)) or "none"
            raise MagnusError(
                f"map '{self.name}': parameter '{self.iterate_on}' to iterate on is not set (set: {known})"
            )
        values = parameters[self.iterate_on]
        if not isinstance(values, list):
            raise MagnusError(
                f"map '{self.name}': parameter '{self.iterate_on}' must be a list, got {type(values).__name__}"
            )
        return values

    def branch_runs(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> Sequence[BranchRun]:
        """One branch per value, made when asked for: a map of 100,000 items holds its values, not 100,000 runs."""
        return _Iterations(self, self.iteration_values(parameters), map_variable)

    def merges_at_fan_in(self, in_order: bool) -> bool:
        return self.reducer is not None or not in_order

    def combine_outputs(self, outputs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        if self.reducer is None:
            return super().combine_outputs(outputs)
        names = dict.fromkeys(name for output in outputs for name in output)
        collected = {name: [output.get(name) for output in outputs] for name in names}
        if self.reducer == COLLECT:
            return collected
        reduce = import_function(self.reducer)
        reduced: Dict[str, Any] = {}
        for name, values in collected.items():
            try:
                reduced[name] = reduce(values)
            except Exception as exc:  # the user's function: its failure fails the step, saying so
                raise MagnusError(
                    f"map '{self.name}': reducer {self.reducer} raised {type(exc).__name__}: {exc} "
                    f"(reducing parameter '{name}')"
                ) from exc
        return reduced

    def labelled_branches(self) -> List[Tuple[str, Graph]]:
        return [("map", self.branch)]


class _Iterations(Sequence[BranchRun]):
    """The branch runs of a map at one map position, one per value, each made when read.

    The names of values sharing ``str(value)`` with another are worked out once, here.
    """

    def __init__(self, node: MapNode, values: List[Any], map_variable: defaults.TypeMapVariable) -> None:
        self.node, self.values, self.outer = node, values, MapPosition.of(map_variable)
        self.prefix = node.step_log_name(map_variable)
        self.names = item_names(values)

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> BranchRun: ...

    @overload
    def __getitem__(self, index: slice) -> List[BranchRun]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[BranchRun, List[BranchRun]]:
        if isinstance(index, slice):
            return [self._run(number) for number in range(len(self.values))[index]]
        return self._run(range(len(self.values))[index])

    def _run(self, index: int) -> BranchRun:
        value, name = self.values[index], self.names.get(index)
        position = self.outer.within(self.node.iterate_as, value, name)
        return BranchRun(f"{self.prefix}.{str(value) if name is None else name}", self.node.branch, position)

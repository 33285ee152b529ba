"""What parallel, map and dag nodes share: they are made of branches, run by the orchestrator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Mapping, NamedTuple, Sequence, Tuple

from magnus import defaults
from magnus.nodes.base import TraversalNode

if TYPE_CHECKING:
    from magnus.graph import Graph


class BranchRun(NamedTuple):
    """One branch to run: its resolved branch log name, its graph, the map position its steps see."""

    name: str
    graph: "Graph"
    map_variable: defaults.TypeMapVariable


class CompositeNode(TraversalNode):
    """A step made of branches; it succeeds when every branch reaches its success node.

    ``dynamic_branches``: which branches run is known only at run time, from the parameters
    (a map); an executor that renders the pipeline ahead (Argo) fans such a step out over the
    values its fan-out step reports. ``reads_parameters``: its fan-out reads the run's parameters
    to work out its branches (a map, a conditional, a loop). ``chooses_branch``: it runs one of its
    branches, chosen at fan-out (a conditional). ``iterates``: it runs its branch again and again,
    each run decided after the one before ended (a loop; see [`LoopNode`][magnus.nodes.loop.LoopNode]).
    A step that chooses or iterates says what it decided in its step log's message.
    """

    is_composite: ClassVar[bool] = True
    dynamic_branches: ClassVar[bool] = False
    reads_parameters: ClassVar[bool] = False
    chooses_branch: ClassVar[bool] = False
    iterates: ClassVar[bool] = False

    @property
    def decides(self) -> bool:
        """Whether what the step did depends on a decision it records (a branch chosen, a loop's end)."""
        return self.chooses_branch or self.iterates

    def decision(self, runs: Sequence[BranchRun], parameters: Mapping[str, Any]) -> str:
        """What the fan-out decided, said in the step log ('' for a step that decides nothing)."""
        return ""

    def merges_at_fan_in(self, in_order: bool) -> bool:
        """Whether fan-in sets the run's parameters from what the branches set (:meth:`combine_outputs`).

        ``in_order``: the branches ran one after another in their order, so what they set is in
        the parameters in that order already. By default a composite leaves the parameters as
        its branches set them.
        """
        return False

    def combine_outputs(self, outputs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        """The parameters set by the whole step, from what each branch set, in branch order.

        By default the later branch's value wins.
        """
        combined: Dict[str, Any] = {}
        for output in outputs:
            combined.update(output)
        return combined

    def branch_runs(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> Sequence[BranchRun]:
        """The branches to run for this step at this map position (a sequence: a map makes each when read).

        Raises:
            MagnusError: the branches cannot be worked out (a map's list parameter is missing).
        """
        raise NotImplementedError

    def labelled_branches(self) -> List[Tuple[str, "Graph"]]:
        """Each branch graph with a short label (a parallel branch's name, ``map``, ``dag``)."""
        raise NotImplementedError

    def get_branches(self) -> List["Graph"]:
        return [graph for _, graph in self.labelled_branches()]

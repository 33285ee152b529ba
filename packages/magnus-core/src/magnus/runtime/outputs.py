"""What the steps of a branch set, read back from their logs: what a composite's fan-in merges.

Each attempt records the parameters it set (``output_parameters``), so what a whole branch set
can be told after the fact, in any process, whatever order its steps and branches ended in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from magnus import defaults
from magnus.nodes.composite import CompositeNode

if TYPE_CHECKING:
    from magnus.datastore.models import BranchLog, StepLog
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode


def branches_outputs(step_log: "StepLog", node: CompositeNode) -> List[Dict[str, Any]]:
    """What each branch of the composite step set, in the order its branches were recorded (fanned out)."""
    labelled = node.labelled_branches()
    graphs = dict(labelled)
    found: List[Dict[str, Any]] = []
    for name, branch in step_log.branches.items():
        # a parallel branch is named by its label (no dots); a map or dag has one graph
        graph = labelled[0][1] if len(labelled) == 1 else graphs.get(name.rsplit(".", 1)[-1])
        if graph is not None:
            found.append(branch_outputs(branch, graph))
    return found


def branch_outputs(branch: "BranchLog", graph: "Graph") -> Dict[str, Any]:
    """What the steps of ``branch`` set, later steps over earlier ones."""
    combined: Dict[str, Any] = {}
    for step_log in branch.steps.values():
        node = graph.steps.get(step_log.name)
        if node is not None:
            combined.update(step_outputs(step_log, node))
    return combined


def step_outputs(step_log: "StepLog", node: "BaseNode") -> Dict[str, Any]:
    """What one step set: its successful attempt's, or its branches' as the composite combines them."""
    if isinstance(node, CompositeNode):
        return node.combine_outputs(branches_outputs(step_log, node))
    if step_log.status != defaults.SUCCESS or not step_log.attempts:
        return {}
    return dict(step_log.attempts[-1].output_parameters)


def set_in_branch(branch: "BranchLog") -> Dict[str, Any]:
    """What the steps of ``branch`` set so far, in the order they were recorded, nested branches included.

    What a step deciding inside a branch (a conditional in a map item) reads first: with workers,
    the run's parameters may meanwhile hold what another item set.
    """
    combined: Dict[str, Any] = {}
    for step_log in branch.steps.values():
        for nested in step_log.branches.values():
            combined.update(set_in_branch(nested))
        if step_log.status == defaults.SUCCESS and step_log.attempts:
            combined.update(step_log.attempts[-1].output_parameters)
    return combined

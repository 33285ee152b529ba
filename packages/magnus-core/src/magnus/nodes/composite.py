"""What parallel, map and dag nodes share: run branches, then settle the step from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Iterator, List, Tuple

from magnus import defaults
from magnus.errors import MagnusError
from magnus.nodes.base import TraversalNode

if TYPE_CHECKING:
    from magnus.context import RunContext
    from magnus.graph import Graph

# (resolved branch log name, the graph to run, the map variable its steps see)
BranchRun = Tuple[str, "Graph", defaults.TypeMapVariable]


class CompositeNode(TraversalNode):
    """A step made of branches; it succeeds when every branch reaches its success node."""

    is_composite: ClassVar[bool] = True

    def branch_runs(self, context: "RunContext", map_variable: defaults.TypeMapVariable) -> Iterator[BranchRun]:
        """The branches to run for this step at this map position."""
        raise NotImplementedError

    def fan_out(self, context: "RunContext", map_variable: defaults.TypeMapVariable = None) -> None:
        store = context.run_log_store
        for branch_name, _, _ in self.branch_runs(context, map_variable):
            branch_log = store.create_branch_log(branch_name)
            branch_log.status = defaults.PROCESSING
            store.add_branch_log(branch_log, context.run_id)

    def execute_as_graph(self, context: "RunContext", map_variable: defaults.TypeMapVariable = None) -> None:
        try:
            runs = list(self.branch_runs(context, map_variable))
        except MagnusError as exc:
            self._settle(context, map_variable, defaults.FAIL, str(exc))
            return
        self.fan_out(context, map_variable)
        context.executor.run_branches(runs)
        self.fan_in(context, map_variable)

    def fan_in(self, context: "RunContext", map_variable: defaults.TypeMapVariable = None) -> None:
        """One read of the branches' statuses, one write of the step's status."""
        statuses = context.run_log_store.get_branch_statuses(self.step_log_name(map_variable), context.run_id)
        failed = [
            name for name, _, _ in self.branch_runs(context, map_variable) if statuses.get(name) != defaults.SUCCESS
        ]
        message = f"branches that did not succeed: {', '.join(failed)}" if failed else ""
        self._settle(context, map_variable, defaults.FAIL if failed else defaults.SUCCESS, message)

    def _settle(self, context: "RunContext", map_variable: defaults.TypeMapVariable, status: str, message: str) -> None:
        store = context.run_log_store
        step_log = store.update_step_log_status(self.step_log_name(map_variable), status, context.run_id, message)
        context.executor.record_finished(step_log)

    def get_branches(self) -> List["Graph"]:
        raise NotImplementedError

"""``type: success`` and ``type: fail``: where a dag ends, setting its branch's (or the run's) status."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from magnus import defaults
from magnus.datastore.models import StepAttempt
from magnus.nodes.base import BaseNode, finish_attempt, started_attempt

if TYPE_CHECKING:
    from magnus.context import RunContext


class TerminalNode(BaseNode):
    """Ends a dag: marks the branch holding it (the run log, at the top) with :attr:`ends_with`."""

    is_terminal: ClassVar[bool] = True
    ends_with: ClassVar[str] = defaults.FAIL

    def execute(
        self, context: "RunContext", map_variable: defaults.TypeMapVariable = None, mock: bool = False
    ) -> StepAttempt:
        attempt = started_attempt()
        context.run_log_store.update_branch_log_status(
            self.branch_log_name(map_variable), self.ends_with, context.run_id
        )
        # The node itself did its job whichever way the dag ended.
        return finish_attempt(attempt, defaults.SUCCESS)


class SuccessNode(TerminalNode):
    node_type: ClassVar[str] = "success"
    ends_with: ClassVar[str] = defaults.SUCCESS


class FailNode(TerminalNode):
    node_type: ClassVar[str] = "fail"
    ends_with: ClassVar[str] = defaults.FAIL

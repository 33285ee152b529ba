"""``type: success`` and ``type: fail``: where a dag ends, setting its branch's (or the run's) status."""

from __future__ import annotations

from typing import ClassVar

from magnus import defaults
from magnus.nodes.base import BaseNode


class TerminalNode(BaseNode):
    """Ends a dag: the branch holding it (the run, at the top) ends with :attr:`ends_with`."""

    is_terminal: ClassVar[bool] = True


class SuccessNode(TerminalNode):
    node_type: ClassVar[str] = "success"
    ends_with: ClassVar[str] = defaults.SUCCESS


class FailNode(TerminalNode):
    node_type: ClassVar[str] = "fail"
    ends_with: ClassVar[str] = defaults.FAIL

"""``magnus runs``: list the runs a run log store holds, show one, compare two, report one as HTML.

One module per job: ``store`` opens the configured store and reads a run, ``listing`` the table
of runs, ``tree`` one run as a tree, ``diff`` what changed between two runs, ``pipeline`` the
pipeline a run recorded with each step's status, ``timeline`` and ``report`` the HTML page;
``commands`` is the command group; ``client`` the same runs as Python objects
(``magnus.Run``, ``magnus.runs()``).

This package is also ``magnus.runs``, the function listing runs: Python makes a package's
submodule an attribute of its parent once imported, so the name ``magnus.runs`` is this module
whatever ``magnus`` exports; calling the module calls
[`client.runs`][magnus.runs.client.runs]. The client is imported on the first call.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, List, Optional

if TYPE_CHECKING:
    from magnus.runs.client import Run


class _CallableModule(types.ModuleType):
    def __call__(
        self,
        config: Optional[str] = None,
        status: Optional[str] = None,
        tag: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> "List[Run]":
        from magnus.runs.client import runs

        return runs(config=config, status=status, tag=tag, limit=limit)


sys.modules[__name__].__class__ = _CallableModule

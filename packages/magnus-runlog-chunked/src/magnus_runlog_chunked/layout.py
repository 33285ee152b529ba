"""Where each part of a run log lives in a chunked run folder.

::

    <log_folder>/<run_id>/
        RunLog.json                     the run's own fields (status, tag, ...)
        RunConfig.json
        parameters/<name>.json          one file per parameter
        steps/<step>/StepLog.json       a step, without its branches
        steps/<step>/branches/<branch>/BranchLog.json
        steps/<step>/branches/<branch>/steps/<step>/StepLog.json
        ...

Folders are named by the part of the internal name that is new at their level (``work`` for
``par.a.work`` inside ``par.a``), quoted so that any character is safe in a file name. A part is
found by descending from the top and trying the shortest name first, so map values with dots in
them (``0.5``) still resolve; the cost depends on the depth of the name, not on the size of the run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Tuple
from urllib.parse import quote

RUN_FILE = "RunLog.json"
CONFIG_FILE = "RunConfig.json"
STEP_FILE = "StepLog.json"
BRANCH_FILE = "BranchLog.json"
CREATED_MARKER = ".created"
PARAMETERS = "parameters"
STEPS = "steps"
BRANCHES = "branches"

_MAX_NAME = 200


def folder_name(part: str) -> str:
    """A file-system-safe, reversible-enough folder name for one part of an internal name."""
    quoted = quote(part, safe="")
    if quoted.startswith("."):
        quoted = "%2E" + quoted[1:]
    if len(quoted) > _MAX_NAME:
        return quoted[:80] + "~" + hashlib.sha1(part.encode()).hexdigest()
    return quoted


def locate(run_folder: Path, internal_name: str, kind: str) -> Tuple[Path, bool]:
    """The folder of a step (``kind='step'``) or branch (``kind='branch'``) log, and whether it exists.

    Descends existing folders as far as the name leads; what remains names the new part, which
    must sit in a container of the right kind (a step in a branch's ``steps``, a branch in a
    step's ``branches``). Returns the folder path it has or would have.

    Raises:
        LookupError: the parent that should hold it does not exist (its message names it).
    """
    parts = internal_name.split(".")
    container = run_folder / STEPS
    container_kind = "step"
    start = 0
    while start < len(parts):
        for end in range(start + 1, len(parts) + 1):
            candidate = container / folder_name(".".join(parts[start:end]))
            if candidate.is_dir():
                break
        else:
            if container_kind != kind:
                raise LookupError(".".join(parts[:start]))
            return container / folder_name(".".join(parts[start:])), False
        if end == len(parts):
            if container_kind != kind:
                raise LookupError(internal_name)
            return candidate, True
        container = candidate / (BRANCHES if container_kind == "step" else STEPS)
        container_kind = "branch" if container_kind == "step" else "step"
        start = end
    raise LookupError(internal_name)

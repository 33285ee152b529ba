"""Where each part of a run log lives in a chunked run folder.

::

    <log_folder>/<run_id>/
        RunLog.json                          the run's own fields (status, tag, ...)
        RunConfig.json
        parameters/<name>.json               one file per parameter
        <step>.step.json                     a step, without its branches
        <step>.branches/<branch>/BranchLog.json
        <step>.branches/<branch>/<step>.step.json
        <step>.branches/<branch>/<step>.branches/...

A folder holding steps (the run's folder or a branch's) is a *container*. Files and folders are
named by the part of the internal name that is new at their level (``work`` for ``par.a.work``
inside ``par.a``), URL-quoted so any character is safe; step names never hold dots, so the
suffixes cannot clash. Only branches get a folder of their own: a map iteration costs one
``mkdir``. A part is found by descending from the run's folder and trying the shortest name first,
so map values with dots in them (``0.5``) still resolve; the cost depends on the depth of the
name, not on the size of the run. Paths are plain strings: this runs for every write of every step.
"""

from __future__ import annotations

import hashlib
import os
from typing import Tuple
from urllib.parse import quote

RUN_FILE = "RunLog.json"
CONFIG_FILE = "RunConfig.json"
BRANCH_FILE = "BranchLog.json"
PARAMETERS = "parameters"
STEP_SUFFIX = ".step.json"
BRANCHES_SUFFIX = ".branches"
# Key under which a part's file records when the part was first written (orders siblings).
CREATED = "_created"

_MAX_NAME = 180


def file_name(part: str) -> str:
    """A file-system-safe name for one part of an internal name."""
    quoted = quote(part, safe="")
    if quoted.startswith("."):
        quoted = "%2E" + quoted[1:]
    if len(quoted) > _MAX_NAME:
        return quoted[:80] + "~" + hashlib.sha1(part.encode()).hexdigest()
    return quoted


def step_file(container: str, part: str) -> str:
    return os.path.join(container, file_name(part) + STEP_SUFFIX)


def branches_folder(container: str, step_part: str) -> str:
    return os.path.join(container, file_name(step_part) + BRANCHES_SUFFIX)


def locate(run_folder: str, internal_name: str, kind: str) -> Tuple[str, bool]:
    """The file of a step (``kind='step'``) or the folder of a branch (``kind='branch'``), and whether it exists.

    Descends what exists as far as the name leads; what remains names the new part, which must
    sit in a container of the right kind (a step in a branch, a branch under a step).

    Raises:
        LookupError: the parent that should hold it does not exist (its message names it).
    """
    parts = internal_name.split(".")
    container = run_folder  # a folder holding steps
    step_container = ""  # a step's branches folder, when the walk is at a step
    start = 0
    while start < len(parts):
        at_step = not step_container
        for end in range(start + 1, len(parts) + 1):
            part = ".".join(parts[start:end])
            candidate = step_file(container, part) if at_step else os.path.join(step_container, file_name(part))
            if (os.path.isfile if at_step else os.path.isdir)(candidate):
                break
        else:
            wanted_here = "step" if at_step else "branch"
            if wanted_here != kind:
                raise LookupError(".".join(parts[:start]))
            rest = ".".join(parts[start:])
            return (step_file(container, rest) if at_step else os.path.join(step_container, file_name(rest))), False
        if end == len(parts):
            if ("step" if at_step else "branch") != kind:
                raise LookupError(internal_name)
            return candidate, True
        if at_step:
            step_container = branches_folder(container, part)
        else:
            container, step_container = candidate, ""
        start = end
    raise LookupError(internal_name)

"""Where each part of a run log lives in a chunked run folder.

::

    <log_folder>/<run_id>/
        RunLog.json                                 the run's own fields (status, tag, ...)
        RunConfig.json
        parameters/<name>.json                      one file per parameter
        <step>.step.json                            a step, without its branches
        <step>.branches/<branch>.branch.json        a branch of that step, without its steps
        <step>.branches/<branch>+<step>.step.json   a step of that branch
        <step>.branches/<branch>+<step>.branches/   the branches of a composite step in a branch

Every part is one file; only composite steps get a folder (for their branches), so a map
iteration costs file writes and no ``mkdir``. Names are the part of the internal name that is new
at their level (``work`` for ``par.a.work`` inside ``par.a``), URL-quoted so any character is safe
and ``+`` (quoted as ``%2B``) can separate a branch from its steps. A part is found by descending
from the run's folder and trying the shortest name first, so map values with dots (``0.5``) still
resolve; the cost depends on the depth of the name, not on the size of the run.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple, Tuple
from urllib.parse import quote

RUN_FILE = "RunLog.json"
CONFIG_FILE = "RunConfig.json"
PARAMETERS = "parameters"
STEP_SUFFIX = ".step.json"
BRANCH_SUFFIX = ".branch.json"
BRANCHES_SUFFIX = ".branches"
SEPARATOR = "+"
# Key under which a part's file records when the part was first written (orders siblings).
CREATED = "_created"

_MAX_NAME = 160


class Container(NamedTuple):
    """Where the steps of the run or of one branch live: a folder and a file-name prefix."""

    folder: str
    prefix: str

    def step_file(self, part: str) -> str:
        return os.path.join(self.folder, self.prefix + file_name(part) + STEP_SUFFIX)

    def branches_folder(self, step_part: str) -> str:
        return os.path.join(self.folder, self.prefix + file_name(step_part) + BRANCHES_SUFFIX)


def file_name(part: str) -> str:
    """A file-system-safe name for one part of an internal name (never holding ``+``)."""
    quoted = quote(part, safe="")
    if quoted.startswith("."):
        quoted = "%2E" + quoted[1:]
    if len(quoted) > _MAX_NAME:
        return quoted[:60] + "~" + hashlib.sha1(part.encode()).hexdigest()
    return quoted


def branch_file(branches_folder: str, part: str) -> str:
    return os.path.join(branches_folder, file_name(part) + BRANCH_SUFFIX)


def branch_container(branch_path: str) -> Container:
    """The container of the steps of the branch whose file is ``branch_path``."""
    folder, name = os.path.split(branch_path)
    return Container(folder, name[: -len(BRANCH_SUFFIX)] + SEPARATOR)


def step_branches(step_path: str) -> str:
    """The folder holding the branches of the step whose file is ``step_path``."""
    return step_path[: -len(STEP_SUFFIX)] + BRANCHES_SUFFIX


def locate(run_folder: str, internal_name: str, kind: str) -> Tuple[str, bool]:
    """The file of a step (``kind='step'``) or branch (``kind='branch'``) log, and whether it exists.

    Descends what exists as far as the name leads; what remains names the new part, which must
    sit where its kind belongs (a step in a branch, a branch under a step).

    Raises:
        LookupError: the parent that should hold it does not exist (its message names it).
    """
    parts = internal_name.split(".")
    container = Container(run_folder, "")
    branches = ""  # the branches folder of the step the walk is at, when it is at a step
    start = 0
    while start < len(parts):
        at_step = not branches
        for end in range(start + 1, len(parts) + 1):
            part = ".".join(parts[start:end])
            candidate = container.step_file(part) if at_step else branch_file(branches, part)
            if os.path.isfile(candidate):
                break
        else:
            if ("step" if at_step else "branch") != kind:
                raise LookupError(".".join(parts[:start]))
            rest = ".".join(parts[start:])
            return (container.step_file(rest) if at_step else branch_file(branches, rest)), False
        if end == len(parts):
            if ("step" if at_step else "branch") != kind:
                raise LookupError(internal_name)
            return candidate, True
        if at_step:
            branches = container.branches_folder(part)
        else:
            container, branches = branch_container(candidate), ""
        start = end
    raise LookupError(internal_name)

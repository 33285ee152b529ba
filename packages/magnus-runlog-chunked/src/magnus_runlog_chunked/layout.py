"""Where each part of a run log lives in a chunked run folder.

::

    <log_folder>/<run_id>/
        RunLog.json                                 the run's own fields (status, tag, ...), its summary
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
from the run's folder, trying branch names shortest first and backing out of dead ends, so map
values with dots (``0.5``, beside ``0``) still resolve; the cost depends on the depth of the
name, not on the size of the run.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

from magnus.names import encode_file_name

RUN_FILE = "RunLog.json"
CONFIG_FILE = "RunConfig.json"
PARAMETERS = "parameters"
STEP_SUFFIX = ".step.json"
BRANCH_SUFFIX = ".branch.json"
BRANCHES_SUFFIX = ".branches"
SEPARATOR = "+"
# Key under which a part's file records when the part was first written (orders siblings).
CREATED = "_created"
# Key under which a step's file records whether the step holds branches (where readers look for them).
BRANCHED = "_branched"
# Key under which the run's own file keeps the run's summary, written with its final status.
SUMMARY = "_summary"


class Container(NamedTuple):
    """Where the steps of the run or of one branch live: a folder and a file-name prefix."""

    folder: str
    prefix: str

    def step_file(self, part: str) -> str:
        return os.path.join(self.folder, self.prefix + file_name(part) + STEP_SUFFIX)

    def branches_folder(self, step_part: str) -> str:
        return os.path.join(self.folder, self.prefix + file_name(step_part) + BRANCHES_SUFFIX)


def file_name(part: str) -> str:
    """A file-system-safe name for one part of an internal name (never holding ``+``).

    Core's one encoding of text kept in file names: ``+`` and ``/`` are percent-encoded, a
    leading ``.`` too, so a map value like ``../x`` stays one file in its folder.
    """
    return encode_file_name(part)


def branch_file(branches_folder: str, part: str) -> str:
    return os.path.join(branches_folder, file_name(part) + BRANCH_SUFFIX)


def branch_container(branch_path: str) -> Container:
    """The container of the steps of the branch whose file is ``branch_path``."""
    folder, name = os.path.split(branch_path)
    return Container(folder, name[: -len(BRANCH_SUFFIX)] + SEPARATOR)


def step_branches(step_path: str) -> str:
    """The folder holding the branches of the step whose file is ``step_path``."""
    return step_path[: -len(STEP_SUFFIX)] + BRANCHES_SUFFIX


def holding_step(branch_path: str) -> str:
    """The file of the step holding the branch whose file is ``branch_path``."""
    return os.path.dirname(branch_path)[: -len(BRANCHES_SUFFIX)] + STEP_SUFFIX


def locate(
    run_folder: str, internal_name: str, kind: str, is_file: Callable[[str], bool] = os.path.isfile
) -> Tuple[str, bool]:
    """The file of a step (``kind='step'``) or branch (``kind='branch'``) log, and whether it exists.

    An internal name alternates steps and branches. Step names hold no dots, but a branch of a map
    is named by its value, which may (``0.5``), so the name is split by trying the branch names
    that exist, shortest first, and backing out of a split that leads nowhere. Among the splits
    whose parents all exist, one whose part exists wins; otherwise the first (where a new part is
    written).

    ``is_file`` tells whether a file exists (the storage's, for a store that is not a local folder).

    Raises:
        LookupError: no split has every parent recorded (its message names the parent).
    """
    parts = internal_name.split(".")
    first: Optional[str] = None
    for path, exists in _splits(parts, 0, Container(run_folder, ""), "", kind, is_file):
        if exists:
            return path, True
        if first is None:
            first = path
    if first is None:
        raise LookupError(".".join(parts[:-1]))  # the parent, when the last part has no dots
    return first, False


def _splits(
    parts: List[str], start: int, container: Container, branches: str, kind: str, is_file: Callable[[str], bool]
) -> Iterator[Tuple[str, bool]]:
    """Every file ``parts[start:]`` can name below a step container (or a step's ``branches`` folder)."""
    at_step = not branches
    last = len(parts)
    ends = [start + 1] if at_step else range(start + 1, last + 1)
    for end in ends:
        part = ".".join(parts[start:end])
        candidate = container.step_file(part) if at_step else branch_file(branches, part)
        if end == last:
            if ("step" if at_step else "branch") == kind:
                yield candidate, is_file(candidate)
        elif is_file(candidate):
            if at_step:
                yield from _splits(parts, end, container, container.branches_folder(part), kind, is_file)
            else:
                yield from _splits(parts, end, branch_container(candidate), "", kind, is_file)

"""Names AWS accepts for what magnus names freely: Batch jobs, Step Functions states, job definitions.

Each is deterministic (the same step always gets the same name) and unique (two steps never share
one): a name that is already valid is kept; any other (spaces, dots, too long) is made valid and
gets a short hash of the original appended.
"""

from __future__ import annotations

import hashlib
import re

from magnus import defaults
from magnus_executor_aws.constants import MAX_JOB_NAME, MAX_STATE_NAME

_NOT_IN_JOB_NAMES = re.compile(r"[^A-Za-z0-9_-]+")
# Control characters are refused in state names (CloudWatch logging of an execution refuses them).
_NOT_IN_STATE_NAMES = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _digest(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:8]


def job_name(name: str) -> str:
    """A Batch job name for step ``name``: ``[A-Za-z0-9_-]``, at most 128 characters, a letter or digit first."""
    readable = name.replace(defaults.MAP_PLACEHOLDER, "map")
    valid = _NOT_IN_JOB_NAMES.sub("-", readable).strip("-_") or "step"
    if valid == name and len(valid) <= MAX_JOB_NAME:
        return valid
    return f"{valid[: MAX_JOB_NAME - 9].rstrip('-_')}-{_digest(name)}"


def state_name(unit_id: str) -> str:
    """A Step Functions state name for a plan unit: at most 80 characters, no control character.

    A unit id reads as the state's name (``process:fan-out`` as ``process fan-out``, a map's
    placeholder as ``map``); one too long is cut and gets a hash of the id.
    """
    readable = unit_id.replace(defaults.MAP_PLACEHOLDER, "map").replace(":", " ")
    valid = _NOT_IN_STATE_NAMES.sub("-", readable).strip() or "unit"
    if len(valid) <= MAX_STATE_NAME and not _NOT_IN_STATE_NAMES.search(unit_id):
        return valid
    return f"{valid[: MAX_STATE_NAME - 9].rstrip('-')}-{_digest(unit_id)}"


def job_definition_name(prefix: str, key: str) -> str:
    """The job definition of one image and set of resources: ``<prefix>-<hash of them>`` (Batch's name rule)."""
    base = _NOT_IN_JOB_NAMES.sub("-", prefix).strip("-_")[: MAX_JOB_NAME - 13] or "magnus"
    return f"{base}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"

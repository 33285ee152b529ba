"""Parameters as ``MAGNUS_PRM_`` environment variables, for every task type, as in magnus 0.5.1.

While a task runs, each parameter of the run is in the environment as ``MAGNUS_PRM_<name>``
(JSON), and inside a map its value is ``MAGNUS_PRM_<iterate_as>`` with the whole map position in
``MAGNUS_MAP_VARIABLE``. What the task sets or changes there comes back: ``MAGNUS_PRM_`` variables
become parameters of the run (names lower-cased, values JSON-decoded), ``MAGNUS_TRACK_<name>
[_STEP_<n>]`` variables become metrics. The environment is restored when the task ends.

A value too large for the environment of a process is written to a file instead, named by
``MAGNUS_PRM_<name>_FILE`` (``MAGNUS_MAP_VARIABLE_FILE`` for the map position), and
``MAGNUS_PRM_<name>`` is not set: the kernel refuses to start any process whose environment
holds one string over 128 KiB (or more than a few MiB in all), so such a variable would break
every command of the step. A value is too large when its variable is over
:data:`LONGEST_VARIABLE` bytes, or when the variables of magnus together exceed
:data:`ENVIRONMENT_BUDGET` (the largest go to files first). The files hold the JSON text, live
in a folder of the step's own and are deleted when the task ends; what a task writes to them is
not read back (export ``MAGNUS_PRM_<name>`` to set a parameter).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from magnus import defaults
from magnus.parameters import decode_value, encode_value

logger = logging.getLogger(defaults.LOGGER_NAME)

# The kernel refuses to start a process with one environment string longer than 128 KiB
# (MAX_ARG_STRLEN), or with arguments and environment over ARG_MAX (2 MiB with the usual 8 MiB
# stack) in all: the variables of magnus stay well under both, with room for the others.
LONGEST_VARIABLE = 128 * 1024 - 1024
ENVIRONMENT_BUDGET = 1024 * 1024
FILE_SUFFIX = "_FILE"


@dataclass
class EnvironmentChanges:
    """What a task set in the environment: parameters by name, metrics as (name, value, step)."""

    parameters: Dict[str, Any] = field(default_factory=dict)
    metrics: List[Tuple[str, Any, int]] = field(default_factory=list)


def exported_variables(
    parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable, spill: Callable[[str, str], str]
) -> Dict[str, str]:
    """The variables a task sees: every parameter, then the map position.

    A variable too large for the environment (see the module) is replaced by ``<variable>_FILE``,
    naming the file ``spill(variable, value)`` wrote its value to.
    """
    variables = {defaults.PARAMETER_PREFIX + key: encode_value(value) for key, value in parameters.items()}
    if map_variable:
        variables[defaults.MAP_VARIABLE] = json.dumps(map_variable)
        variables.update({defaults.PARAMETER_PREFIX + key: encode_value(value) for key, value in map_variable.items()})
    sizes = {key: len(key.encode()) + len(value.encode()) + 2 for key, value in variables.items()}
    total = sum(sizes.values())
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if sizes[key] <= LONGEST_VARIABLE and total <= ENVIRONMENT_BUDGET:
            break
        value = variables.pop(key)
        variables[key + FILE_SUFFIX] = spill(key, value)
        total -= sizes[key]
        logger.debug("%s (%d bytes) is too large for the environment: in %s%s", key, sizes[key], key, FILE_SUFFIX)
    return variables


@contextlib.contextmanager
def parameters_in_environment(
    parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable = None
) -> Iterator[EnvironmentChanges]:
    """Within the block the parameters are in ``os.environ``; after it, what changed is yielded back.

    Only the variables magnus exports, and those a task adds with magnus's prefixes, are looked
    at and restored: copying the whole environment would cost more than a no-op step.
    """
    with _SpillFolder() as spill:
        with _exported(parameters, map_variable, spill.write) as changes:
            yield changes


class _SpillFolder:
    """A folder of the step's own for the values too large for the environment, made on first use."""

    def __init__(self) -> None:
        self.folder = ""

    def write(self, variable: str, value: str) -> str:
        if not self.folder:
            self.folder = tempfile.mkdtemp(prefix="magnus-parameters-")
        path = os.path.join(self.folder, variable)
        with open(path, "w", encoding="utf-8") as file:
            file.write(value)
        return path

    def __enter__(self) -> "_SpillFolder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def _exported(
    parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable, spill: Callable[[str, str], str]
) -> Iterator[EnvironmentChanges]:
    exported = exported_variables(parameters, map_variable, spill)
    before = {key: os.environ.get(key) for key in exported}
    before.update((key, value) for key, value in _returned_variables())
    # A value in a file is not also in the environment, even an older one from before the step.
    for key in exported:
        if key.endswith(FILE_SUFFIX) and key[: -len(FILE_SUFFIX)] not in exported:
            os.environ.pop(key[: -len(FILE_SUFFIX)], None)
    os.environ.update(exported)
    changes = EnvironmentChanges()
    try:
        yield changes
    finally:
        seen = {**before, **exported}
        after = dict(_returned_variables())
        _read_back(after, seen, changes)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            elif os.environ.get(key) != value:
                os.environ[key] = value
        for key in after.keys() - before.keys():
            del os.environ[key]


def _returned_variables() -> Iterator[Tuple[str, str]]:
    """The variables a task may set to pass something back: ``MAGNUS_PRM_*`` and ``MAGNUS_TRACK_*``."""
    prefixes = (defaults.PARAMETER_PREFIX, defaults.TRACK_PREFIX)
    # Keys first: reading every value of the environment costs more than the rest of a no-op step.
    return ((key, os.environ[key]) for key in list(os.environ) if key.startswith(prefixes))


def _read_back(after: Mapping[str, str], seen: Mapping[str, Optional[str]], changes: EnvironmentChanges) -> None:
    for key, raw in after.items():
        if seen.get(key) == raw:
            continue
        if key.startswith(defaults.PARAMETER_PREFIX) and len(key) > len(defaults.PARAMETER_PREFIX):
            changes.parameters[key[len(defaults.PARAMETER_PREFIX) :].lower()] = decode_value(raw)
        elif key.startswith(defaults.TRACK_PREFIX) and len(key) > len(defaults.TRACK_PREFIX):
            changes.metrics.append(tracked_metric(key[len(defaults.TRACK_PREFIX) :], raw))


def tracked_metric(name: str, raw: str) -> Tuple[str, Any, int]:
    """``<name>[_STEP_<n>]`` and its value as (name, value, step): numbers as numbers."""
    step = 0
    if defaults.STEP_INDICATOR in name:
        name, _, step_text = name.rpartition(defaults.STEP_INDICATOR)
        step = int(step_text) if step_text.isdigit() else 0
    value = decode_value(raw)
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return name.lower(), convert(value), step
            except ValueError:
                pass
    return name.lower(), value, step

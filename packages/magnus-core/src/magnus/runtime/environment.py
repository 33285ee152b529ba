"""Parameters as ``MAGNUS_PRM_`` environment variables, for every task type, as in magnus 0.5.1.

While a task runs, each parameter of the run is in the environment as ``MAGNUS_PRM_<name>``
(JSON), and inside a map its value is ``MAGNUS_PRM_<iterate_as>`` with the whole map position in
``MAGNUS_MAP_VARIABLE``. What the task sets or changes there comes back: ``MAGNUS_PRM_`` variables
become parameters of the run (names lower-cased, values JSON-decoded), ``MAGNUS_TRACK_<name>
[_STEP_<n>]`` variables become metrics. The environment is restored when the task ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from magnus import defaults
from magnus.parameters import decode_value, encode_value

logger = logging.getLogger(defaults.LOGGER_NAME)

# The kernel refuses to start a process with one environment string longer than this
# (MAX_ARG_STRLEN): such a parameter would break every process the task starts.
_LONGEST_VARIABLE = 131072


@dataclass
class EnvironmentChanges:
    """What a task set in the environment: parameters by name, metrics as (name, value, step)."""

    parameters: Dict[str, Any] = field(default_factory=dict)
    metrics: List[Tuple[str, Any, int]] = field(default_factory=list)


def exported_variables(parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> Dict[str, str]:
    """The variables a task sees: every parameter, then the map position."""
    variables = {defaults.PARAMETER_PREFIX + key: encode_value(value) for key, value in parameters.items()}
    if map_variable:
        variables[defaults.MAP_VARIABLE] = json.dumps(map_variable)
        variables.update({defaults.PARAMETER_PREFIX + key: encode_value(value) for key, value in map_variable.items()})
    too_long = [key for key, value in variables.items() if len(key) + len(value) + 2 > _LONGEST_VARIABLE]
    for key in too_long:
        logger.debug("%s is too long for the environment of a process: left out", key)
        del variables[key]
    return variables


@contextlib.contextmanager
def parameters_in_environment(
    parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable = None
) -> Iterator[EnvironmentChanges]:
    """Within the block the parameters are in ``os.environ``; after it, what changed is yielded back.

    Only the variables magnus exports, and those a task adds with magnus's prefixes, are looked
    at and restored: copying the whole environment would cost more than a no-op step.
    """
    exported = exported_variables(parameters, map_variable)
    before = {key: os.environ.get(key) for key in exported}
    before.update((key, value) for key, value in _returned_variables())
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

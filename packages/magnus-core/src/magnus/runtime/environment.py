"""Parameters as ``MAGNUS_PRM_`` environment variables, for every task type, as in magnus 0.5.1.

While a task runs, each parameter of the run is in the environment as ``MAGNUS_PRM_<name>``
(JSON), and inside a map its value is ``MAGNUS_PRM_<iterate_as>`` with the whole map position in
``MAGNUS_MAP_VARIABLE``. What the task sets or changes there comes back: ``MAGNUS_PRM_`` variables
become parameters of the run (names lower-cased, values JSON-decoded), ``MAGNUS_TRACK_<name>
[_STEP_<n>]`` variables become metrics. The environment is restored when the task ends.

A value too large for the environment of a process is written to a file instead, named by
``MAGNUS_FILE_PRM_<name>`` (``MAGNUS_FILE_MAP_VARIABLE`` for the map position: the variable's
name with ``FILE_`` after ``MAGNUS_``), and ``MAGNUS_PRM_<name>`` is not set. Those variables are
outside the ``MAGNUS_PRM_`` prefix, so no parameter's name can be taken for one of them (a
parameter ``x_FILE`` is ``MAGNUS_PRM_x_FILE``, whatever ``x`` holds), and they are never read back
as parameters. The kernel refuses to start any process whose environment
holds one string over 128 KiB (or more than a few MiB in all), so such a variable would break
every command of the step. A value is too large when its variable is over
:data:`LONGEST_VARIABLE` bytes, or when the variables of magnus together exceed
:data:`ENVIRONMENT_BUDGET` (the largest go to files first). The files hold the JSON text and are
read-only; what a task writes to them is not read back (export ``MAGNUS_PRM_<name>`` to set a
parameter). What a task exports is checked as any parameter entering a run is
(:func:`magnus.parameters.decode_parameter`): a step exporting ``MAGNUS_PRM_x=NaN`` fails.

A run's :class:`ParameterVariables` encodes each value once while it stays the same object (a
store hands out its own values and never changes them in place), and writes each file once while
its value and the file stay unchanged: a map of N items would otherwise encode (and write) the list
it iterates on once per item, N times, and a run of N items would cost N². The files live in a
folder of the run's, removed when the process that made the run's variables ends.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

from magnus import defaults
from magnus.parameters import FILE_PREFIX, decode_parameter, decode_value, encode_value, file_variable, valued_variable

logger = logging.getLogger(defaults.LOGGER_NAME)

# The kernel refuses to start a process with one environment string longer than 128 KiB
# (MAX_ARG_STRLEN), or with arguments and environment over ARG_MAX (2 MiB with the usual 8 MiB
# stack) in all: the variables of magnus stay well under both, with room for the others.
LONGEST_VARIABLE = 128 * 1024 - 1024
ENVIRONMENT_BUDGET = 1024 * 1024


@dataclass
class EnvironmentChanges:
    """What a task set in the environment: parameters by name, metrics as (name, value, step)."""

    parameters: Dict[str, Any] = field(default_factory=dict)
    metrics: List[Tuple[str, Any, int]] = field(default_factory=list)


class _Encoded(NamedTuple):
    """A value (kept: its identity says it is unchanged) and its variable's text and size."""

    value: Any
    text: str
    size: int


class _Spilled(NamedTuple):
    encoded: _Encoded
    path: str
    stamp: Tuple[int, int, int]


class ParameterVariables:
    """The ``MAGNUS_PRM_`` variables of one run's steps in this process, each value encoded once."""

    def __init__(self) -> None:
        self._encoded: Dict[str, _Encoded] = {}
        self._spilled: Dict[str, _Spilled] = {}
        self._files = itertools.count()
        self.folder = os.path.join(tempfile.gettempdir(), f"magnus-parameters-{os.getpid()}-{secrets.token_hex(4)}")
        # Forked workers share the folder and leave without atexit: the process that made it removes it.
        atexit.register(shutil.rmtree, self.folder, True)

    def exported(self, parameters: Mapping[str, Any], map_variable: defaults.TypeMapVariable) -> Dict[str, str]:
        """The variables a task sees: every parameter, then the map position.

        A variable too large for the environment (see the module) is replaced by
        :func:`file_variable` of it, naming the file holding its value.
        """
        named = [(defaults.PARAMETER_PREFIX + key, value) for key, value in parameters.items()]
        if map_variable:
            named.append((defaults.MAP_VARIABLE, map_variable))
            named += [(defaults.PARAMETER_PREFIX + key, value) for key, value in map_variable.items()]
        encoded = {variable: self._encode(variable, value) for variable, value in named}
        total = sum(item.size for item in encoded.values())
        variables = {key: item.text for key, item in encoded.items()}
        if total <= ENVIRONMENT_BUDGET and all(item.size <= LONGEST_VARIABLE for item in encoded.values()):
            return variables
        for key in sorted(encoded, key=lambda name: encoded[name].size, reverse=True):
            item = encoded[key]
            if item.size <= LONGEST_VARIABLE and total <= ENVIRONMENT_BUDGET:
                break
            del variables[key]
            variables[file_variable(key)] = self._spill(key, item)
            total -= item.size
            logger.debug("%s (%d bytes) is too large for the environment: in %s", key, item.size, file_variable(key))
        return variables

    def _encode(self, variable: str, value: Any) -> _Encoded:
        known = self._encoded.get(variable)
        if known is None or known.value is not value:
            text = encode_value(value)
            known = _Encoded(value, text, len(variable.encode()) + len(text.encode()) + 2)
            self._encoded[variable] = known
        return known

    def _spill(self, variable: str, encoded: _Encoded) -> str:
        """The read-only file of ``variable``'s value: the one written before, while it holds this value."""
        known = self._spilled.get(variable)
        if known is not None and known.encoded is encoded and _stamp(known.path) == known.stamp:
            return known.path
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"{variable}-{os.getpid()}-{next(self._files)}")
        with open(path, "w", encoding="utf-8") as file:
            file.write(encoded.text)
        os.chmod(path, 0o444)
        if known is not None:
            with contextlib.suppress(OSError):
                os.remove(known.path)
        self._spilled[variable] = _Spilled(encoded, path, _stamp(path))
        return path


def _stamp(path: str) -> Tuple[int, int, int]:
    """What tells a file was changed: its inode, size and time of last change (-1s: it is gone)."""
    try:
        found = os.stat(path)
    except OSError:
        return (-1, -1, -1)
    return (found.st_ino, found.st_size, found.st_mtime_ns)


@contextlib.contextmanager
def parameters_in_environment(
    parameters: Mapping[str, Any],
    map_variable: defaults.TypeMapVariable = None,
    variables: Optional[ParameterVariables] = None,
) -> Iterator[EnvironmentChanges]:
    """Within the block the parameters are in ``os.environ``; after it, what changed is yielded back.

    ``variables`` is the run's (its encodings and files kept from step to step); without it the
    block makes its own, and its files are removed when it ends. Only the variables magnus
    exports, and those a task adds with magnus's prefixes, are looked at and restored: copying the
    whole environment would cost more than a no-op step.
    """
    own = variables is None
    variables = variables or ParameterVariables()
    try:
        with _exported(variables.exported(parameters, map_variable)) as changes:
            yield changes
    finally:
        if own:
            shutil.rmtree(variables.folder, ignore_errors=True)


@contextlib.contextmanager
def _exported(exported: Dict[str, str]) -> Iterator[EnvironmentChanges]:
    """Export, then restore; what the task changed is read back once it ended without raising.

    The environment is restored before what was read back is checked: a value refused there
    (``ParameterError``) leaves the environment as it was, like any other failure of the task.
    """
    before = {key: os.environ.get(key) for key in exported}
    before.update((key, value) for key, value in _returned_variables())
    # A value in a file is not also in the environment, even an older one from before the step.
    for key in exported:
        if key.startswith(FILE_PREFIX) and valued_variable(key) not in exported:
            valued = valued_variable(key)
            before.setdefault(valued, os.environ.get(valued))
            os.environ.pop(valued, None)
    os.environ.update(exported)
    changes = EnvironmentChanges()
    after: Dict[str, str] = {}
    try:
        yield changes
    finally:
        after = dict(_returned_variables())
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            elif os.environ.get(key) != value:
                os.environ[key] = value
        for key in after.keys() - before.keys():
            del os.environ[key]
    _read_back(after, {**before, **exported}, changes)


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
            name = key[len(defaults.PARAMETER_PREFIX) :].lower()
            changes.parameters[name] = decode_parameter(name, raw, f"exported {key}")
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


@contextlib.contextmanager
def launch_variables(variables: Dict[str, str]) -> Iterator[None]:
    """``variables`` in ``os.environ`` for the block, then restored: what a launch request's environment
    gives a process it starts, for a unit done in a process that outlives it (a forked worker, a Ray worker)."""
    if not variables:
        yield
        return
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

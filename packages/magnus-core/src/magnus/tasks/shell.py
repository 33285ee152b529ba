"""``command_type: shell``: run a command in ``/bin/sh``.

Parameters reach the command as ``MAGNUS_PRM_<name>`` environment variables (JSON-encoded) and a
map branch's value as ``MAGNUS_MAP_VARIABLE`` (JSON) and ``MAGNUS_PRM_<iterate_as>``. Variables the
command exports with the ``MAGNUS_PRM_`` prefix become parameters of the run, and ``MAGNUS_TRACK_``
ones are tracked as metrics, as in magnus 0.5.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Dict

from magnus import defaults
from magnus.errors import TaskFailedError
from magnus.parameters import decode_value, encode_value
from magnus.tasks.base import BaseTaskType

_DUMP_VARIABLE = "MAGNUS_ENV_DUMP_FILE"
# Runs on any exit of the shell, explicit `exit` included: the environment as the command left it.
_PRELUDE = f"trap 'env -0 > \"${_DUMP_VARIABLE}\"' EXIT\n"


class ShellTaskType(BaseTaskType):
    """Runs a shell command; exported ``MAGNUS_PRM_`` variables become parameters."""

    task_type: ClassVar[str] = "shell"

    def execute_command(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        passed = {defaults.PARAMETER_PREFIX + key: encode_value(value) for key, value in parameters.items()}
        if map_variable:
            passed[defaults.MAP_VARIABLE] = json.dumps(map_variable)
            passed.update({defaults.PARAMETER_PREFIX + key: encode_value(value) for key, value in map_variable.items()})

        with tempfile.TemporaryDirectory(prefix="magnus-shell-") as scratch:
            dump = Path(scratch) / "environment"
            environment = {**os.environ, **passed, _DUMP_VARIABLE: str(dump)}
            status = _run_streaming(_PRELUDE + self.command, environment)
            exported = _read_environment(dump)

        if status != 0:
            raise TaskFailedError(f"shell command exited with status {status}")
        _track_exported(exported, os.environ)
        return {
            key[len(defaults.PARAMETER_PREFIX) :].lower(): decode_value(value)
            for key, value in exported.items()
            if key.startswith(defaults.PARAMETER_PREFIX) and passed.get(key) != value and os.environ.get(key) != value
        }


def _run_streaming(script: str, environment: Dict[str, str]) -> int:
    """Run ``script`` with its output (stdout and stderr, in order) copied to our stdout."""
    with subprocess.Popen(
        script,
        shell=True,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
        return process.wait()


def _read_environment(dump: Path) -> Dict[str, str]:
    try:
        raw = dump.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    pairs = (entry.partition("=") for entry in raw.split("\0") if "=" in entry)
    return {key: value for key, _, value in pairs}


def _track_exported(exported: Dict[str, str], before: Dict[str, str] | os._Environ[str]) -> None:
    """Record ``MAGNUS_TRACK_<name>[_STEP_<n>]`` variables the command set as metrics of the step."""
    tracked = {
        key: value
        for key, value in exported.items()
        if key.startswith(defaults.TRACK_PREFIX) and before.get(key) != value
    }
    if not tracked:
        return
    from magnus.interaction import track_this

    for key, raw in tracked.items():
        name = key[len(defaults.TRACK_PREFIX) :]
        step = 0
        if defaults.STEP_INDICATOR in name:
            name, _, step_text = name.rpartition(defaults.STEP_INDICATOR)
            step = int(step_text) if step_text.isdigit() else 0
        track_this(step=step, **{name.lower(): _number_or_text(raw)})


def _number_or_text(raw: str) -> Any:
    value = decode_value(raw)
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return convert(value)
            except ValueError:
                pass
    return value

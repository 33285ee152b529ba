"""``command_type: shell``: run a command in ``/bin/sh``.

The command inherits the step's environment, where the step runner put the run's parameters as
``MAGNUS_PRM_<name>`` (JSON) and a map's position as ``MAGNUS_MAP_VARIABLE``. What the command
exports with the ``MAGNUS_PRM_`` or ``MAGNUS_TRACK_`` prefix is copied back into the step's
environment when it ends, where the step runner reads it as parameters and metrics, as in
magnus 0.5.1. A parameter too large for the environment of a process is in the file named by
``MAGNUS_FILE_PRM_<name>`` instead (see :mod:`magnus.runtime.environment`).
"""

from __future__ import annotations

import codecs
import io
import os
import signal
import string
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Dict

from magnus import defaults
from magnus.errors import TaskFailedError
from magnus.parameters import file_variable
from magnus.tasks.base import BaseTaskType

_DUMP_VARIABLE = "MAGNUS_ENV_DUMP_FILE"
_DUMP_FAILED = ".failed"
# Runs on any exit of the shell, explicit `exit` included: the environment as the command left it.
# `env` is a process: it cannot start when the command exported a variable over 128 KiB.
_PRELUDE = f'trap \'env -0 > "${_DUMP_VARIABLE}" 2>/dev/null || : > "${_DUMP_VARIABLE}{_DUMP_FAILED}"\' EXIT\n'
_BLOCK = 1 << 16  # the most of a command's output read at once
_RETURNED_PREFIXES = (defaults.PARAMETER_PREFIX, defaults.TRACK_PREFIX)
_MAGNUS = "MAGNUS_"
# What a shell takes as part of a variable's name after ``$``: a name ends at anything else.
_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_")


class ShellTaskType(BaseTaskType):
    """Runs a shell command; exported ``MAGNUS_PRM_``/``MAGNUS_TRACK_`` variables come back."""

    task_type: ClassVar[str] = "shell"

    def parameters_used(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        """The parameters whose variables the command names: ``$MAGNUS_PRM_x`` or ``$MAGNUS_FILE_PRM_x``.

        The command sees every parameter, but an attempt recording them all made a run log grow
        with the parameters times the shell steps and their retries (a 6 MB parameter, one more
        copy per attempt). A variable is named when the command holds it as a whole word
        (``$MAGNUS_PRM_ab`` does not name ``a``); a map position is named by
        ``MAGNUS_MAP_VARIABLE``. What a script the command starts reads from its environment is
        not known, and not recorded (the run log's own ``parameters`` hold the run's values).
        """
        command = self.command
        if _MAGNUS not in command:
            return {}
        available = {**parameters, **(map_variable or {})}
        used = {
            name: value
            for name, value in available.items()
            if _names_variable(command, defaults.PARAMETER_PREFIX + name)
        }
        if map_variable and _names_variable(command, defaults.MAP_VARIABLE):
            used.update(map_variable)
        return used

    def execute_command(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="magnus-shell-") as scratch:
            dump = Path(scratch) / "environment"
            status = _run_streaming(_PRELUDE + self.command, {**os.environ, _DUMP_VARIABLE: str(dump)})
            exported = _read_environment(dump)
            unreadable = dump.with_name(dump.name + _DUMP_FAILED).exists()
        if status != 0:
            raise TaskFailedError(f"shell command exited with status {status}")
        if unreadable:
            raise TaskFailedError(
                "the environment the shell command left could not be read back (a variable over 128 KiB "
                "stops any process from starting): pass large values in files"
            )
        os.environ.update(
            {
                key: value
                for key, value in exported.items()
                if key.startswith(_RETURNED_PREFIXES) and os.environ.get(key) != value
            }
        )
        return {}


def _run_streaming(script: str, environment: Dict[str, str]) -> int:
    """Run ``script`` with its output (stdout and stderr, in order) copied to our stdout as it comes.

    Read in blocks of at most 64 KiB, whatever it prints (a line of a gigabyte with no newline):
    what is in flight stays that small. The shell leads a process group of its own: when the step
    is interrupted (Ctrl-C, a worker stopped) the shell and everything it started are killed with
    it, never left running.
    """
    with subprocess.Popen(
        script,
        shell=True,
        process_group=0,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        pipe = process.stdout.fileno()
        # a character split across blocks; \r\n and \r become \n, as magnus 0.5.1 read the output
        decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")(errors="replace"), translate=True)
        try:
            while block := os.read(pipe, _BLOCK):
                sys.stdout.write(decoder.decode(block))
            sys.stdout.write(decoder.decode(b"", final=True))
            return process.wait()
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            raise


def _read_environment(dump: Path) -> Dict[str, str]:
    try:
        raw = dump.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    pairs = (entry.partition("=") for entry in raw.split("\0") if "=" in entry)
    return {key: value for key, _, value in pairs}


def _names_variable(command: str, variable: str) -> bool:
    """Whether ``command`` names ``variable``, or the variable of the file holding its value, as a whole word."""
    return _holds_word(command, variable) or _holds_word(command, file_variable(variable))


def _holds_word(text: str, word: str) -> bool:
    """Whether ``word`` is in ``text`` with no name character just before or after it."""
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        before_ok = start == 0 or text[start - 1] not in _NAME_CHARACTERS
        if before_ok and (end == len(text) or text[end] not in _NAME_CHARACTERS):
            return True
        start = text.find(word, start + 1)
    return False

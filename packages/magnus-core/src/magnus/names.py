"""Names that become paths: run ids, step and branch names, values in file names.

Run ids people can say out loud (``<adjective>-<name>-<HHMM>``, the shape magnus 0.5.1 used); one
check for every name a user gives that becomes a file or folder name (:func:`check_path_name`);
one encoding for text that must be kept in a file name whatever it holds (:func:`encode_file_name`);
one way to suggest the name a user meant (:func:`did_you_mean`).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import random
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Iterable, Optional, Union
from urllib.parse import quote

from magnus.errors import ConfigurationError, UserInputError
from magnus.terminal import for_terminal

_ADJECTIVES = (
    "agile amber ancient bold brave bright calm candid clever cosmic crisp curious daring deft eager "
    "early fair fearless fleet gentle glad golden grand hardy humble jolly keen kind lively lucid "
    "lucky mellow merry mighty nimble noble patient plucky polite proud quick quiet rapid ready "
    "serene sharp shiny silent sleek smooth snappy spry steady sturdy sunny swift tidy vivid witty zesty"
).split()

_NAMES = (
    "agnesi babbage bohr boole borg cannon carson curie darwin dijkstra einstein euler faraday fermi "
    "feynman franklin galileo gauss goodall hamilton hawking hopper hypatia joliot kepler knuth "
    "lamarr lovelace maxwell meitner mendel mirzakhani morse newton noether pascal pasteur perlman "
    "planck poincare ramanujan ritchie sagan shannon sinoussi thompson tesla torvalds turing volta "
    "wiles wozniak wright yalow"
).split()


def generate_run_id() -> str:
    """``<adjective>-<name>-<HHMM>-<6 hex digits>``: readable as magnus 0.5.1's, with 24 random bits so
    that runs started in the same minute do not share an id by chance (3,240 names a minute did)."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NAMES)}-{datetime.now():%H%M}-{os.urandom(3).hex()}"


# ---- names that become paths -------------------------------------------------------------------------
# Longest run id: it is a file name (``<run_id>.journal``) that temporary names extend further.
RUN_ID_MAX_BYTES = 128
NAME_MAX_BYTES = 255
# Longest encoded file name; longer ones keep a prefix and a digest of the whole (see encode_file_name).
_ENCODED_MAX = 160


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'file-system'?`` when ``known`` holds a close spelling of ``name``, else ''.

    What every "unknown name" message ends with (a plugin type, a config key, a step of a run),
    so a typo is fixed from the message alone. The suggestion is shown through
    [`for_terminal`][magnus.terminal.for_terminal]: the message stays one line.
    """
    close = difflib.get_close_matches(name, sorted(set(known) - {name}), n=1, cutoff=0.6)
    return f"; did you mean '{for_terminal(close[0])}'?" if close else ""


def check_path_name(value: str, what: str, *, max_bytes: int = NAME_MAX_BYTES) -> str:
    """``value`` unchanged when it is safe as one file or folder name, else a one-line refusal.

    Refused: empty or only spaces, ``.``, ``..``, a ``/`` or ``\\`` (so no absolute path either),
    characters that are not seen as themselves (:func:`hidden_character_problem`: control,
    invisible and bidirectional formatting characters, line separators, spaces other than ``' '``),
    a leading ``-`` (it would read as an option where the name is passed on a command line), more
    than ``max_bytes`` bytes of UTF-8.

    Raises:
        UserInputError: naming ``what`` (``--run-id``, ``step name``...) and the value.
    """
    problem = path_name_problem(value, max_bytes=max_bytes)
    if problem:
        raise UserInputError(f"{what} {value!r}: {problem}")
    return value


def path_name_problem(value: str, *, max_bytes: int = NAME_MAX_BYTES) -> str:
    """What makes ``value`` unsafe as one file name ('' when it is safe); see :func:`check_path_name`."""
    if not value:
        return "must not be empty"
    if value in (".", ".."):
        return "'.' and '..' name folders, not a run or a step"
    for character in ("/", "\\"):
        if character in value:
            return f"must not contain {character!r} (it becomes a file name)"
    hidden = hidden_character_problem(value)
    if hidden:
        return hidden
    if not value.strip(" "):
        return "must not be blank (only spaces)"
    if value.startswith("-"):
        return "must not start with '-' (it would read as an option on a command line)"
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        return f"longer than {max_bytes} bytes"
    return ""


# Characters a name must not hold, by Unicode category: what they are, said in the refusal.
_HIDDEN = {
    "Cc": "NUL and other control characters are refused",
    "Cf": "invisible and bidirectional formatting characters are refused",
    "Zl": "line separators are refused",
    "Zp": "paragraph separators are refused",
    "Zs": "spaces other than ' ' are refused",
}


def hidden_character_problem(value: str) -> str:
    """Why ``value`` holds a character that is not seen as itself ('' when it holds none).

    A name with a control character, an invisible or bidirectional formatting character (U+200B
    ZERO WIDTH SPACE, U+202E RIGHT-TO-LEFT OVERRIDE), a line or paragraph separator or a space
    other than ``' '`` (U+00A0, U+3000) reads as another name, or as none: the refusal names the
    first such character, ``must not contain U+202E (RIGHT-TO-LEFT OVERRIDE): ...``.
    """
    if value.isprintable():  # every character refused here is one str.isprintable() refuses
        return ""
    for character in value:
        category = unicodedata.category(character)
        if category in _HIDDEN and character != " ":
            name = unicodedata.name(character, "")
            described = f"U+{ord(character):04X}" + (f" ({name})" if name else "")
            return f"must not contain {described}: {_HIDDEN[category]}"
    return ""


def check_tag(value: str, what: str = "--tag") -> str:
    """``value`` unchanged when it can be a run's tag ('' is no tag), else a one-line refusal.

    A tag is one line of visible text: it is printed (``magnus runs``) and recorded in run logs and
    trackers. Refused: the characters :func:`hidden_character_problem` refuses, spaces only.

    Raises:
        UserInputError: ``--tag 'a\\nb': must not contain U+000A: ...``.
    """
    problem = hidden_character_problem(value) or (
        "must not be blank (only spaces)" if value and not value.strip(" ") else ""
    )
    if problem:
        raise UserInputError(f"{what} {value!r}: {problem}")
    return value


def encode_file_name(value: str) -> str:
    """A file name for any text, kept readable and safe: it stays in its folder and is never hidden.

    Characters other than letters, digits and ``_.-~`` are percent-encoded (``../x`` becomes
    ``..%2Fx``), a leading ``.`` too (``%2E``), so no value names a parent folder, a hidden file or a
    sub-folder; a name longer than 160 characters keeps its first 60 and a digest of the whole.
    Distinct values give distinct names.
    """
    quoted = quote(value, safe="", errors="surrogatepass")
    if quoted.startswith("."):
        quoted = "%2E" + quoted[1:]
    if len(quoted) > _ENCODED_MAX:
        return quoted[:60] + "~" + hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()
    return quoted


def working_folder_problem(value: str, working_folder: Optional[Path] = None) -> str:
    """Why the folder ``value`` is not inside the working folder ('' when it is).

    Relative paths must not climb out with ``..``; absolute ones must lie under the working folder
    (``working_folder``, by default the current one). Judged on the text: a folder the user made a
    symlink is theirs to make.
    """
    if "\x00" in value:
        return "must not contain NUL"
    base = os.path.abspath(working_folder or os.getcwd())
    target = os.path.normpath(os.path.join(base, value))
    if os.path.commonpath([base, target]) != base:
        return f"must be a folder inside the working folder {base} (relative, without '..' leading out)"
    return ""


def relative_inside(path: str, folder: str) -> Optional[str]:
    """``path`` relative to ``folder``, with ``/`` separators, when it lies inside it (judged on the
    text, as the engine that reads it there will: an image's working directory, an uploaded code
    folder); None when it leads out."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return Path(relative).as_posix()


def is_inside(path: Union[str, Path], folder: Union[str, Path]) -> bool:
    """Whether ``path``, symlinks resolved, lies in ``folder`` (symlinks resolved too) or is it."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def usable_folder(folder: Union[str, Path], field: str) -> Path:
    """``folder``, created when missing; refused in one line naming the config ``field`` when it
    is a file, cannot be created or is not writable.

    Raises:
        ConfigurationError: ``run_log_store.config.log_folder: '.x' is a file, not a folder``.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"{field}: '{folder}' is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"{field}: '{folder}' cannot be made a folder: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{field}: '{folder}' is not writable")
    return path

"""Which version of the code a run used, looked up once per run with a single ``git`` process.

Starting ``git`` costs a few milliseconds per process, and every run (every pod of an Argo run)
pays it, so one ``git status --porcelain=v2 --branch`` gives both the commit (its
``# branch.oid`` header) and the changed files, and the origin URL is read from the repository's
``config`` file instead of asking ``git config`` for it. A run starts the lookup when its services
are made ([`CodeIdentityLookup`][]) and git answers while the run reads its configuration, loads
its plugins and compiles its plan.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Optional

from magnus.datastore.models import CodeIdentity

STATUS = ("status", "--porcelain=v2", "--branch", "--untracked-files=no", "-z")
_SECTION = re.compile(r'\[\s*([\w.-]+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*\]')
# A comment after a value: from an unquoted # or ; to the end of the line.
_COMMENT = re.compile(r'\s[#;][^"]*$')


def git_code_identity() -> CodeIdentity:
    """The git commit of the working folder, whether the tree is clean, and the origin URL.

    Outside a git repository (or without git) the identity says so in its message instead of
    failing the run; a repository without a remote simply has no URL.
    """
    identity = CodeIdentity(code_identifier_type="git")
    try:
        result = subprocess.run(["git", *STATUS], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return _unknown(identity, str(exc) or repr(exc))
    if result.returncode != 0:
        return _unknown(identity, result.stderr.decode(errors="replace").strip() or f"git {' '.join(STATUS)} failed")
    commit, changed = _parse_status(result.stdout.decode(errors="replace"))
    if commit in ("", "(initial)"):
        return _unknown(identity, "the repository has no commit yet")
    identity.code_identifier = commit
    identity.code_identifier_dependable = not changed
    if changed:
        identity.code_identifier_message = "changes found in " + ", ".join(changed[:20])
    identity.code_identifier_url = _origin_url(Path.cwd())
    return identity


class CodeIdentityLookup:
    """[`git_code_identity`][] in a thread started when this is made; [`result`][] waits for it.

    A process forked while the thread ran (it does not run in the child) looks the identity up
    again when it asks.
    """

    def __init__(self) -> None:
        self._identity: Optional[CodeIdentity] = None
        self._thread = threading.Thread(target=self._look_up, name="magnus-code-identity", daemon=True)
        self._thread.start()

    def _look_up(self) -> None:
        self._identity = git_code_identity()

    def result(self) -> CodeIdentity:
        """The identity, once git answered."""
        self._thread.join()
        if self._identity is None:
            self._identity = git_code_identity()
        return self._identity


def _unknown(identity: CodeIdentity, reason: str) -> CodeIdentity:
    identity.code_identifier_message = f"code version unknown: {reason.splitlines()[0]}"
    return identity


def _parse_status(output: str) -> tuple[str, list[str]]:
    """The commit and the changed paths of ``git status --porcelain=v2 --branch -z`` (NUL-ended records).

    A record's path is its last field (paths may hold spaces): ``1`` (changed) has eight fields
    before it, ``2`` (renamed or copied) nine and its original path as the next record, ``u``
    (unmerged) ten. A rename reads ``old -> new``, as in ``git status --porcelain``.
    """
    commit, changed = "", []
    records = iter(output.split("\0"))
    for record in records:
        kind = record[:2]
        if record.startswith("# branch.oid "):
            commit = record[len("# branch.oid ") :]
        elif kind == "1 ":
            changed.append(record.split(" ", 8)[-1])
        elif kind == "2 ":
            changed.append(f"{next(records, '')} -> {record.split(' ', 9)[-1]}")
        elif kind == "u ":
            changed.append(record.split(" ", 10)[-1])
    return commit, changed


def _git_dir(folder: Path) -> Path | None:
    """The git dir of ``folder``'s repository: ``$GIT_DIR``, or the first ``.git`` going up.

    A ``.git`` file (a worktree, a submodule) holds ``gitdir: PATH``, relative to its folder.
    """
    if os.environ.get("GIT_DIR"):
        return folder / os.environ["GIT_DIR"]
    for parent in (folder, *folder.parents):
        dot_git = parent / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            content = dot_git.read_text(errors="replace").strip()
            return parent / content[len("gitdir:") :].strip() if content.startswith("gitdir:") else None
    return None


def _origin_url(folder: Path) -> str:
    """``remote.origin.url`` from the repository's config file ("" without one); includes are not followed.

    A worktree's git dir names the shared one (where the config is) in its ``commondir`` file.
    """
    try:
        git_dir = _git_dir(folder)
        if git_dir is None:
            return ""
        if (git_dir / "commondir").is_file():
            git_dir = git_dir / (git_dir / "commondir").read_text(errors="replace").strip()
        return _config_value((git_dir / "config").read_text(errors="replace"), ("remote", "origin"), "url")
    except OSError:
        return ""


def _config_value(text: str, section: tuple[str, str], key: str) -> str:
    """The last value of ``key`` in the ``[section "subsection"]`` blocks of a git config file.

    Enough of git's syntax for a URL: section and key names are case-insensitive (the subsection
    is not, unless written in the old ``[section.subsection]`` form); a value loses its quotes and
    a trailing ``#``/``;`` comment. Escapes and continued lines are not interpreted.
    """
    found, current = "", ("", "")
    for raw in text.splitlines():
        line = raw.strip()
        header = _SECTION.match(line)
        if header:
            name = header.group(1).lower()
            current = (name, header.group(2)) if header.group(2) is not None else tuple(name.partition(".")[::2])
            continue
        name, equals, value = line.partition("=")
        if equals and current == section and name.strip().lower() == key:
            found = _COMMENT.sub("", value).strip().strip('"')
    return found

"""Which version of the code a run used, looked up once per run."""

from __future__ import annotations

import subprocess

from magnus.datastore.models import CodeIdentity


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"git {' '.join(args)} failed")
    return result.stdout.strip()


def git_code_identity() -> CodeIdentity:
    """The git commit of the working folder, whether the tree is clean, and the origin URL.

    Outside a git repository (or without git) the identity says so in its message instead of
    failing the run; a repository without a remote simply has no URL.
    """
    identity = CodeIdentity(code_identifier_type="git")
    try:
        identity.code_identifier = _git("rev-parse", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        identity.code_identifier_message = f"code version unknown: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        return identity
    identity.code_identifier_dependable = not changed
    if changed:
        files = [line[3:] for line in changed.splitlines()]
        identity.code_identifier_message = "changes found in " + ", ".join(files[:20])
    try:
        identity.code_identifier_url = _git("config", "--get", "remote.origin.url")
    except (OSError, RuntimeError, subprocess.SubprocessError):
        identity.code_identifier_url = ""
    return identity

"""The git code identity of a run, taken in real repositories with one git process per run."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from magnus import code_identity
from magnus.datastore.models import CodeIdentity

URL = "https://example.invalid/team/project.git"


@pytest.fixture(autouse=True)
def only_the_repositories_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration changes what the tests see."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_DIR", raising=False)


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def repository(folder: Path, remote: str = "") -> Path:
    """A repository with one commit of config.yaml, steps.py and "my notes.txt"."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "config", "user.email", "tests@example.invalid")
    git(folder, "config", "user.name", "tests")
    for name in ("config.yaml", "steps.py", "my notes.txt"):
        (folder / name).write_text(f"{name}\n")
    git(folder, "add", ".")
    git(folder, "commit", "-qm", "first")
    if remote:
        git(folder, "remote", "add", "origin", remote)
    return folder


def identity_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> CodeIdentity:
    """The identity taken in ``folder``, checking that it started exactly one subprocess."""
    calls: list[Any] = []
    run = subprocess.run

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return run(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.chdir(folder)
        patch.setattr("magnus.code_identity.subprocess.run", counting)
        identity = code_identity.git_code_identity()
    assert len(calls) == 1, calls
    return identity


def test_a_clean_repository_with_a_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project", remote=URL)
    (folder / "sub").mkdir()

    identity = identity_in(folder / "sub", monkeypatch)

    assert identity.code_identifier == git(folder, "rev-parse", "HEAD")
    assert identity.code_identifier_type == "git"
    assert identity.code_identifier_dependable is True
    assert identity.code_identifier_message == ""
    assert identity.code_identifier_url == URL


def test_without_a_remote_there_is_no_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project")

    identity = identity_in(folder, monkeypatch)

    assert identity.code_identifier == git(folder, "rev-parse", "HEAD")
    assert identity.code_identifier_dependable is True
    assert identity.code_identifier_url == ""


def test_changed_files_are_named_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project", remote=URL)
    (folder / "config.yaml").write_text("changed\n")  # " M config.yaml": its first letter used to be lost
    (folder / "my notes.txt").write_text("changed\n")
    git(folder, "add", "my notes.txt")  # "M  my notes.txt"
    (folder / "untracked.py").write_text("")  # untracked files are not changes of the code

    identity = identity_in(folder, monkeypatch)

    assert identity.code_identifier == git(folder, "rev-parse", "HEAD")
    assert identity.code_identifier_dependable is False
    assert identity.code_identifier_message == "changes found in config.yaml, my notes.txt"
    assert identity.code_identifier_url == URL


def test_a_rename_names_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project")
    git(folder, "mv", "steps.py", "pipeline steps.py")
    (folder / "config.yaml").unlink()

    identity = identity_in(folder, monkeypatch)

    assert identity.code_identifier_dependable is False
    assert identity.code_identifier_message == "changes found in config.yaml, steps.py -> pipeline steps.py"


def test_a_merge_conflict_is_a_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project")
    git(folder, "checkout", "-q", "-b", "other")
    (folder / "config.yaml").write_text("other\n")
    git(folder, "commit", "-qam", "other")
    git(folder, "checkout", "-q", "main")
    (folder / "config.yaml").write_text("main\n")
    git(folder, "commit", "-qam", "main")
    assert subprocess.run(["git", "merge", "-q", "other"], cwd=folder, capture_output=True).returncode != 0

    identity = identity_in(folder, monkeypatch)

    assert identity.code_identifier == git(folder, "rev-parse", "HEAD")
    assert identity.code_identifier_message == "changes found in config.yaml"


def test_a_worktree_reads_the_shared_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project", remote=URL)
    git(folder, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "feature"))
    (tmp_path / "feature" / "steps.py").write_text("changed\n")
    git(tmp_path / "feature", "commit", "-qam", "on the feature branch")
    (tmp_path / "feature" / "config.yaml").write_text("changed\n")

    identity = identity_in(tmp_path / "feature", monkeypatch)

    assert identity.code_identifier == git(tmp_path / "feature", "rev-parse", "HEAD")
    assert identity.code_identifier != git(folder, "rev-parse", "HEAD")
    assert identity.code_identifier_message == "changes found in config.yaml"
    assert identity.code_identifier_url == URL


def test_a_submodule_reads_its_own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = repository(tmp_path / "library", remote="https://example.invalid/library.git")
    folder = repository(tmp_path / "project", remote=URL)
    git(folder, "-c", "protocol.file.allow=always", "submodule", "-q", "add", str(library), "vendor/library")
    git(folder / "vendor" / "library", "remote", "set-url", "origin", "https://example.invalid/library.git")

    identity = identity_in(folder / "vendor" / "library", monkeypatch)

    assert (folder / "vendor" / "library" / ".git").is_file()
    assert identity.code_identifier == git(library, "rev-parse", "HEAD")
    assert identity.code_identifier_url == "https://example.invalid/library.git"


def test_a_repository_without_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    git(folder, "init", "-q")

    identity = identity_in(folder, monkeypatch)

    assert identity.code_identifier == ""
    assert identity.code_identifier_dependable is False
    assert identity.code_identifier_message == "code version unknown: the repository has no commit yet"


def test_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()

    identity = identity_in(tmp_path / "plain", monkeypatch)

    assert identity.code_identifier == ""
    assert identity.code_identifier_dependable is False
    assert str(identity.code_identifier_message).startswith("code version unknown: fatal: not a git repository")
    assert identity.code_identifier_url == ""


def test_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repository(tmp_path / "project", remote=URL)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))

    identity = identity_in(folder, monkeypatch)

    assert identity.code_identifier == ""
    assert str(identity.code_identifier_message).startswith("code version unknown: [Errno 2]")


CONFIG = r"""# a comment
[core]
	bare = false
[Remote "Origin"]
	url = https://example.invalid/wrong-case.git
[remote.origin]
	url = https://example.invalid/old-form.git
[remote "upstream"]
	url = https://example.invalid/upstream.git
[remote "origin"] ; the one that counts
	fetch = +refs/heads/*:refs/remotes/origin/*
	URL = https://example.invalid/first.git
	url = "https://example.invalid/with space.git" # the last value wins
	pushurl = https://example.invalid/push.git
"""


def test_the_config_file_reads_as_git_reads_it(tmp_path: Path) -> None:
    """Case, old and new section forms, comments and quotes as git reads them (escapes are not read)."""
    text = CONFIG
    (tmp_path / "config").write_text(text)

    expected = git(tmp_path, "config", "--file", "config", "--get", "remote.origin.url")

    assert code_identity._config_value(text, ("remote", "origin"), "url") == expected

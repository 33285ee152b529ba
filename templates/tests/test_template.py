"""The plugin template's tooling: the wrapper's refusals, the repository as a template, ``copier update``.

What each kind renders is tested by the rendered packages' own tests (``nox -s template``).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, NamedTuple

import copier
import pytest
import yaml

TEMPLATES = Path(__file__).resolve().parents[1]
ROOT = TEMPLATES.parent
sys.path.insert(0, str(TEMPLATES))

from render_plugin import KINDS, main  # noqa: E402


class Ran(NamedTuple):
    returncode: int
    stderr: str


def wrapper(*arguments: str) -> Ran:
    """``render_plugin.py ARGUMENTS``, in this process (importing copier once)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(arguments))
        except SystemExit as exc:
            return Ran(int(exc.code or 0), errors.getvalue())
    return Ran(0, errors.getvalue())


def git(folder: Path, *arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=folder, capture_output=True, text=True, check=True).stdout


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits without the user's git configuration."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    for variable in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(variable, "template test")
    for variable in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(variable, "template@example.invalid")


def test_the_kinds_are_the_templates_choices() -> None:
    questions = yaml.safe_load((TEMPLATES / "plugin" / "copier.yml").read_text())
    assert sorted(questions["kind"]["choices"].values()) == sorted(KINDS)
    assert sorted(path.name for path in (TEMPLATES / "plugin" / "kinds").iterdir()) == sorted(KINDS)


def test_the_kind_is_never_guessed_from_a_name(tmp_path: Path) -> None:
    finished = wrapper("magnus-runlog-sqlite", str(tmp_path / "new"))
    assert finished.returncode == 2
    assert "invalid choice: 'magnus-runlog-sqlite'" in finished.stderr
    assert not (tmp_path / "new").exists()


def test_a_distribution_naming_another_kind_is_refused(tmp_path: Path) -> None:
    finished = wrapper("secrets", "sqlite", str(tmp_path / "new"), "--distribution", "magnus-runlog-sqlite")
    assert finished.returncode == 2
    [line] = finished.stderr.splitlines()
    assert "'magnus-runlog-sqlite' names a run_log_store plugin, but the kind is secrets" in line
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", ["Sqlite", "my_store"])
def test_a_bad_name_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    finished = wrapper("run_log_store", name, str(tmp_path / "new"))
    assert finished.returncode == 2
    [line] = finished.stderr.splitlines()
    assert f"'{name}' must be lower-case letters and digits" in line


def test_a_folder_holding_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("mine")
    finished = wrapper("pickler", "zstd", str(tmp_path))
    assert finished.returncode == 2 and "is not empty" in finished.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["kept.txt"]


def test_the_wrapper_renders_the_kind_asked(tmp_path: Path) -> None:
    finished = wrapper("run_log_store", "sqlite", str(tmp_path / "new"))
    assert finished.returncode == 0, finished.stderr
    pyproject = (tmp_path / "new" / "pyproject.toml").read_text()
    assert 'name = "magnus-runlog-sqlite"' in pyproject
    assert '[project.entry-points.run_log_store]\nsqlite = "magnus_runlog_sqlite.plugin:SqliteRunLogStore"' in pyproject
    assert (
        "class SqliteRunLogStore(BaseRunLogStore):"
        in (tmp_path / "new" / "src" / "magnus_runlog_sqlite" / "plugin.py").read_text()
    )


def answers(project: Path) -> Dict[str, str]:
    return dict(yaml.safe_load((project / ".copier-answers.yml").read_text()))


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout of the repository")
def test_the_repository_renders_the_template_with_its_commit(tmp_path: Path) -> None:
    """``copier copy <repository>``: copier.yml at the root includes the template's; the commit is kept."""
    project = tmp_path / "magnus-tracker-files"
    copier.run_copy(str(ROOT), project, data={"kind": "experiment_tracker", "plugin_name": "files"}, defaults=True)
    recorded = answers(project)
    assert recorded["kind"] == "experiment_tracker" and recorded["_commit"]
    assert "[project.entry-points.experiment_tracker]" in (project / "pyproject.toml").read_text()
    assert (
        "class FilesTracker(BaseExperimentTracker):"
        in (project / "src" / "magnus_tracker_files" / "plugin.py").read_text()
    )


def commit_all(folder: Path, message: str, tag: str = "") -> None:
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", message)
    if tag:
        git(folder, "tag", tag)


def test_copier_update_brings_template_changes_and_keeps_the_authors(tmp_path: Path) -> None:
    """A package rendered from a git repository of the template follows the template's later versions."""
    template = tmp_path / "template"
    shutil.copytree(TEMPLATES / "plugin", template)
    git(template, "init", "-q")
    commit_all(template, "the template", tag="v1")

    project = tmp_path / "magnus-pickler-zstd"
    copier.run_copy(str(template), project, data={"kind": "pickler", "plugin_name": "zstd"}, defaults=True)
    assert answers(project)["_commit"] == "v1"
    git(project, "init", "-q")
    plugin = project / "src" / "magnus_pickler_zstd" / "plugin.py"
    default, changed = "compresslevel: int = Field(default=6", "compresslevel: int = Field(default=3"
    plugin.write_text(plugin.read_text().replace(default, changed))
    commit_all(project, "rendered, and the author's own change")

    changelog = template / "template" / "CHANGELOG.md.jinja"
    changelog.write_text(changelog.read_text() + "- A line the template added later.\n")
    commit_all(template, "a later template", tag="v2")

    copier.run_update(project, defaults=True, overwrite=True, quiet=True)
    assert answers(project)["_commit"] == "v2"
    assert "- A line the template added later." in (project / "CHANGELOG.md").read_text()
    assert changed in plugin.read_text()
    assert answers(project)["kind"] == "pickler"

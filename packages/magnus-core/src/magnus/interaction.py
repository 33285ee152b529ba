"""What a task's own code can ask of magnus while it runs (``from magnus import get_parameter``).

Inside a step these talk to the run context. Outside one (a script a shell task starts, say)
parameter and tracking calls fall back to ``MAGNUS_PRM_``/``MAGNUS_TRACK_`` environment
variables, as in magnus 0.5.1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any, ContextManager, Optional

from magnus import context as run_context
from magnus import defaults
from magnus.datastore.models import DataCatalog, RunLog
from magnus.errors import NoRunContextError
from magnus.parameters import cast_value, encode_value, parameters_from_environment, private_copy, to_jsonable

logger = logging.getLogger(defaults.LOGGER_NAME)


def _context() -> Optional[run_context.RunContext]:
    return run_context.run_context


def get_parameter(key: Optional[str] = None, cast_as: Any = None) -> Any:
    """One parameter (cast to ``cast_as`` if given), or all of them when ``key`` is None.

    Raises:
        KeyError: no parameter of that name is set.
    """
    ctx = _context()
    parameters = ctx.run_log_store.get_parameters(ctx.run_id) if ctx else parameters_from_environment()
    if ctx and ctx.current_map_variable:
        parameters.update(ctx.current_map_variable)
    if key is None:
        everything = private_copy(parameters)
        return cast_value(everything, cast_as) if cast_as else everything
    if key not in parameters:
        raise KeyError(f"parameter '{key}' is not set (set: {', '.join(sorted(parameters)) or 'none'})")
    value = private_copy(parameters[key])
    return cast_value(value, cast_as) if cast_as else value


def set_parameter(**kwargs: Any) -> None:
    """Set (or replace) parameters of the run; pydantic models are stored as their dicts."""
    values = {key: to_jsonable(value) for key, value in kwargs.items()}
    ctx = _context()
    if ctx is None:
        for key, value in values.items():
            os.environ[defaults.PARAMETER_PREFIX + key] = encode_value(value)
        return
    ctx.run_log_store.set_parameters(ctx.run_id, ctx.redactor.redact_data(values))


def get_secret(secret_name: str) -> str:
    """The value of a secret from the configured secrets backend.

    From then on the value is masked (``***``) in everything the run writes: step output,
    execution logs, messages, parameters and metrics.
    """
    ctx = _require_context()
    value = ctx.secrets.get(secret_name)
    ctx.redactor.add([value])
    return value


def track_this(step: int = 0, **kwargs: Any) -> None:
    """Track metrics: into the step log's ``user_defined_metrics`` and the experiment tracker.

    Numbers are metrics; anything else is a parameter of the tracker. ``step`` orders repeated
    observations of the same name.
    """
    ctx = _context()
    for key, raw in kwargs.items():
        value = ctx.redactor.redact_data(to_jsonable(raw)) if ctx else to_jsonable(raw)
        if ctx is None:
            os.environ[f"{defaults.TRACK_PREFIX}{key}{defaults.STEP_INDICATOR}{step}"] = json.dumps(value)
            continue
        ctx.metrics.record(key, value, step)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ctx.experiment_tracker.log_metric(key, float(value), step=step)
        else:
            ctx.experiment_tracker.log_parameter(f"{key}_{step}" if step else key, value)


def get_experiment_tracker_context() -> ContextManager[Any]:
    """The tracking tool's client context (a null context without a tracker)."""
    ctx = _context()
    return ctx.experiment_tracker.client_context if ctx else contextlib.nullcontext()


def put_in_catalog(filepath: str) -> None:
    """Put a file (or glob) of the compute folder into the run's catalog, recorded on the step."""
    ctx = _require_context()
    folder = getattr(ctx.catalog, "compute_data_folder", defaults.COMPUTE_DATA_FOLDER)
    entries = ctx.catalog.put(filepath, ctx.run_id, folder)
    _record(ctx, entries)


def get_from_catalog(name: str, destination_folder: Optional[str] = None) -> None:
    """Get a file (or glob) the run put in the catalog into ``destination_folder`` (the compute folder)."""
    ctx = _require_context()
    folder = str(destination_folder or getattr(ctx.catalog, "compute_data_folder", defaults.COMPUTE_DATA_FOLDER))
    entries = ctx.catalog.get(name, ctx.run_id, folder)
    _record(ctx, entries)


def put_object(data: Any, name: str) -> None:
    """Store a python object for later steps (``get_object(name)``), through the catalog.

    Without a catalog that keeps data (core's ``do-nothing``) the object stays in the working
    folder as ``<name><extension>``, where ``get_object`` finds it.
    """
    ctx = _require_context()
    ctx.pickler.dump(data, name)
    file_name = name + ctx.pickler.extension
    if ctx.catalog.keeps_data:
        try:
            put_in_catalog(file_name)
        finally:
            os.remove(file_name)


def get_object(name: str) -> Any:
    """The object stored by ``put_object(data, name)`` in this run (or a run it resumes)."""
    ctx = _require_context()
    file_name = name + ctx.pickler.extension
    if not ctx.catalog.keeps_data:
        return ctx.pickler.load(name)
    get_from_catalog(file_name)
    try:
        return ctx.pickler.load(name)
    finally:
        os.remove(file_name)


def get_run_id() -> str:
    """The id of the run this code is part of (``MAGNUS_RUN_ID`` outside a run)."""
    ctx = _context()
    if ctx is None:
        return os.environ.get(defaults.ENV_RUN_ID, "")
    return ctx.run_id


def get_tag() -> str:
    ctx = _context()
    return ctx.tag if ctx else ""


def get_run_log() -> RunLog:
    """A copy of the run log as it is now."""
    ctx = _require_context()
    return ctx.run_log_store.get_run_log_by_id(ctx.run_id).model_copy(deep=True)


INTERACTIVE_STEP = "interactive"


def start_interactive_session(
    run_id: str = "", config_file: str = "", tag: str = "", parameters_file: str = ""
) -> None:
    """Make a notebook or a python shell a run of its own, as magnus 0.5.1 did.

    Until :func:`end_interactive_session`, the interaction API records into the step ``interactive``
    of a new run (parameters, metrics, catalog). The executor is always local; nothing happens when a
    run is already active.
    """
    if _context() is not None:
        logger.warning("a magnus run is already active in this process: no interactive session started")
        return
    from magnus.entrypoints import build_context
    from magnus.executor.local import LocalExecutor

    ctx = build_context(
        graph=None,
        dag_definition={},
        configuration_file=config_file,
        parameters_file=parameters_file,
        run_id=run_id,
        tag=tag,
    )
    ctx.executor = LocalExecutor()
    ctx.executor.prepare_for_graph_execution()
    step_log = ctx.run_log_store.create_step_log(INTERACTIVE_STEP, INTERACTIVE_STEP)
    step_log.status = defaults.PROCESSING
    step_log.code_identities = [ctx.code_identity]
    ctx.run_log_store.add_step_log(step_log, ctx.run_id)
    ctx.current_step = step_log
    ctx.metrics.values.clear()


def end_interactive_session() -> None:
    """Close the session: record the step's metrics and data, end the run successfully."""
    ctx = _context()
    step_log = ctx.current_step if ctx else None
    if ctx is None or step_log is None or step_log.name != INTERACTIVE_STEP:
        logger.warning("there is no interactive session to end")
        return
    step_log.status = defaults.SUCCESS
    step_log.user_defined_metrics = ctx.metrics.as_run_log()
    ctx.run_log_store.add_step_log(step_log, ctx.run_id)
    ctx.run_log_store.update_run_log_status(ctx.run_id, defaults.SUCCESS)
    ctx.current_step = None
    run_context.set_current(None)


def _require_context() -> run_context.RunContext:
    ctx = _context()
    if ctx is None:
        raise NoRunContextError("no magnus run is active in this process (call this from a step of a pipeline)")
    return ctx


def _record(ctx: run_context.RunContext, entries: list[DataCatalog]) -> None:
    if ctx.current_step is not None:
        ctx.current_step.add_data_catalogs(entries)


__all__: list[str] = [
    "end_interactive_session",
    "start_interactive_session",
    "get_experiment_tracker_context",
    "get_from_catalog",
    "get_object",
    "get_parameter",
    "get_run_id",
    "get_run_log",
    "get_secret",
    "get_tag",
    "put_in_catalog",
    "put_object",
    "set_parameter",
    "track_this",
]

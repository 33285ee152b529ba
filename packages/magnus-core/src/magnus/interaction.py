"""What a task's own code can ask of magnus while it runs (``from magnus import get_parameter``).

Inside a step these talk to the run of the current step (`magnus.runtime.current`). Outside
one (a script a shell task starts, say) parameter and tracking calls fall back to
``MAGNUS_PRM_``/``MAGNUS_TRACK_`` environment variables, as in magnus 0.5.1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any, ContextManager, Optional

from magnus import defaults
from magnus.datastore.models import RunLog
from magnus.errors import NoRunContextError
from magnus.parameters import (
    cast_value,
    check_parameters,
    encode_value,
    parameters_from_environment,
    private_copy,
    to_jsonable,
)
from magnus.runtime import current, objects

logger = logging.getLogger(defaults.LOGGER_NAME)


def get_parameter(key: Optional[str] = None, cast_as: Any = None) -> Any:
    """One parameter (cast to ``cast_as`` if given), or all of them when ``key`` is None.

    Raises:
        KeyError: no parameter of that name is set.
    """
    step = current.current_step()
    if step is None:
        parameters = parameters_from_environment()
    else:
        parameters = step.services.run_log_store.get_parameters(step.services.run_id)
        parameters.update(step.map_variable or {})
    if key is None:
        everything = private_copy(parameters)
        return cast_value(everything, cast_as) if cast_as else everything
    if key not in parameters:
        raise KeyError(f"parameter '{key}' is not set (set: {', '.join(sorted(parameters)) or 'none'})")
    value = private_copy(parameters[key])
    return cast_value(value, cast_as) if cast_as else value


def set_parameter(**kwargs: Any) -> None:
    """Set (or replace) parameters of the run; pydantic models are stored as their dicts.

    Raises:
        ParameterError: a name cannot be a parameter's, or a value is not JSON data (``NaN``,
            an infinity, nested too deep, an object): nothing is set.
    """
    values = {key: to_jsonable(value) for key, value in kwargs.items()}
    check_parameters(values, "set_parameter")
    step = current.current_step()
    if step is None:
        for key, value in values.items():
            os.environ[defaults.PARAMETER_PREFIX + key] = encode_value(value)
        return
    services = step.services
    services.run_log_store.set_parameters(services.run_id, services.redactor.redact_data(values))


def get_secret(secret_name: str) -> str:
    """The value of a secret from the configured secrets backend.

    From then on the value is masked (``***``) in everything the run writes: step output,
    execution logs, messages, parameters and metrics.
    """
    services = _require_step().services
    value = services.secrets.get(secret_name)
    services.redactor.add([value])
    return value


def track_this(step: int = 0, **kwargs: Any) -> None:
    """Track metrics: into the step log's ``user_defined_metrics`` and the experiment tracker.

    Numbers are metrics; anything else is a parameter of the tracker. ``step`` orders repeated
    observations of the same name.
    """
    running = current.current_step()
    for key, raw in kwargs.items():
        value = to_jsonable(raw)
        if running is None:
            os.environ[f"{defaults.TRACK_PREFIX}{key}{defaults.STEP_INDICATOR}{step}"] = json.dumps(value)
        else:
            current.track(running, key, value, step)


def get_experiment_tracker_context() -> ContextManager[Any]:
    """The tracking tool's client context (a null context outside a step)."""
    step = current.current_step()
    return step.services.experiment_tracker.client_context if step else contextlib.nullcontext()


def put_in_catalog(filepath: str) -> None:
    """Put a file (or glob) of the compute folder into the run's catalog, recorded on the step."""
    step = _require_step()
    catalog = step.services.catalog
    step.step_log.add_data_catalogs(catalog.put(filepath, step.services.run_id, catalog.compute_data_folder))


def get_from_catalog(name: str, destination_folder: Optional[str] = None) -> None:
    """Get a file (or glob) the run put in the catalog into ``destination_folder`` (the compute folder)."""
    step = _require_step()
    catalog = step.services.catalog
    folder = str(destination_folder or catalog.compute_data_folder)
    step.step_log.add_data_catalogs(catalog.get(name, step.services.run_id, folder))


def put_object(data: Any, name: str) -> None:
    """Store a python object for later steps of this run (``get_object(name)``).

    Objects belong to their run: two runs at once never see each other's. With a catalog that
    keeps data the object is put there (``<name>.pickle``, recorded on the step); without one it
    is kept in ``.magnus/objects/<run_id>/`` under the working folder. Inside a map iteration the
    object is also kept for that iteration alone, so iterations putting the same name do not
    overwrite what each reads back; the run-wide copy is the last one put, as in magnus 0.5.1.
    A python function taking an argument of that name (without a default, named by no
    parameter) receives the object too.

    Raises:
        UserInputError: ``name`` cannot be a file name (empty, ``/``, ``..``, a glob character).
    """
    objects.put(_require_step(), data, name)


def get_object(name: str) -> Any:
    """The object stored by ``put_object(data, name)`` (or returned as ``pickled(name)``) in this run
    (or a run it resumes).

    Inside a map iteration, what this iteration put comes first, then what was put for the
    enclosing iterations, then for the whole run.

    Raises:
        CatalogError: no object of that name was put.
        UserInputError: ``name`` cannot be a file name.
    """
    return objects.get(_require_step(), name)


def get_run_id() -> str:
    """The id of the run this code is part of (``MAGNUS_RUN_ID`` outside a run)."""
    step = current.current_step()
    return step.services.run_id if step else os.environ.get(defaults.ENV_RUN_ID, "")


def get_tag() -> str:
    step = current.current_step()
    return step.services.tag if step else ""


def get_run_log() -> RunLog:
    """A copy of the run log as it is now."""
    services = _require_step().services
    return services.run_log_store.get_run_log_by_id(services.run_id).model_copy(deep=True)


INTERACTIVE_STEP = "interactive"


def start_interactive_session(
    run_id: str = "", config_file: str = "", tag: str = "", parameters_file: str = ""
) -> None:
    """Make a notebook or a python shell a run of its own, as magnus 0.5.1 did.

    Until [`end_interactive_session`][], the interaction API records into the step ``interactive``
    of a new run (parameters, metrics, catalog). Nothing is executed by an executor; nothing
    happens when a step is already running.
    """
    if current.current_step() is not None:
        logger.warning("a magnus run is already active in this process: no interactive session started")
        return
    from magnus.datastore.models import StepLog
    from magnus.entrypoints import RunOptions, compose, load_dag, single_task_dag
    from magnus.runtime.units import UnitRecords

    options = RunOptions(configuration_file=config_file, parameters_file=parameters_file, run_id=run_id, tag=tag)
    pipeline = load_dag(single_task_dag(INTERACTIVE_STEP, {"type": "stub"}), source=INTERACTIVE_STEP)
    _, services = compose(pipeline, options)
    records = UnitRecords(services)
    records.begin_run()
    records.start_tracking()
    step_log = StepLog(
        name=INTERACTIVE_STEP,
        internal_name=INTERACTIVE_STEP,
        status=defaults.PROCESSING,
        code_identities=[services.code_identity],
    )
    services.run_log_store.add_step_log(services.run_id, step_log)
    current.enter(current.CurrentStep(services, step_log))


def end_interactive_session() -> None:
    """Close the session: record the step's metrics and data, end the run successfully."""
    step = current.current_step()
    if step is None or step.step_log.name != INTERACTIVE_STEP:
        logger.warning("there is no interactive session to end")
        return
    services = step.services
    step.step_log.status = defaults.SUCCESS
    step.step_log.user_defined_metrics = step.metrics.as_run_log()
    services.run_log_store.add_step_log(services.run_id, step.step_log)
    services.run_log_store.update_run_log_status(services.run_id, defaults.SUCCESS)
    services.experiment_tracker.end_run(defaults.SUCCESS)
    current.enter(None)


def _require_step() -> current.CurrentStep:
    step = current.current_step()
    if step is None:
        raise NoRunContextError("no magnus run is active in this process (call this from a step of a pipeline)")
    return step


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

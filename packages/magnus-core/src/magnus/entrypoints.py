"""What the CLI and the SDK call: read the inputs of a run into values, check them, start the run.

Every input (pipeline, configuration, parameters file, plugins) is read once and checked here,
before the run log exists or any step runs; the result is one :class:`RunOptions` and one
:class:`RunServices`, handed to the executor (a whole run) or to the orchestrator (one step of a
run walked elsewhere).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Optional, Tuple

from magnus import defaults, integration
from magnus.catalog import BaseCatalog
from magnus.config import configuration_path, create_service, load_configuration
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.models import RunLog
from magnus.errors import MagnusError, PipelineDefinitionError, UserInputError
from magnus.executor.base import BaseExecutor
from magnus.parameters import initial_parameters
from magnus.parsing import parse_pipeline
from magnus.redaction import Redactor
from magnus.runtime.events import NO_OBSERVER, RunObserver
from magnus.runtime.services import Pipeline, RunOptions, RunServices
from magnus.service import BaseService
from magnus.service_failures import using
from magnus.yaml_file import load_yaml

if TYPE_CHECKING:
    pass

logger = logging.getLogger(defaults.LOGGER_NAME)


# ---- reading the inputs ------------------------------------------------------------------------------
def load_pipeline(pipeline_file: str) -> Pipeline:
    """Parse and check a pipeline YAML file (a python one: `magnus.python_pipeline.load_any`)."""
    document = load_yaml(pipeline_file, "pipeline file", lambda message: PipelineDefinitionError([message]))
    graph = parse_pipeline(document, source=pipeline_file, base_dir=Path(pipeline_file).parent)
    return Pipeline(graph, document["dag"], dag_hash(document["dag"]))


def load_dag(dag: Dict[str, Any], source: str = "pipeline") -> Pipeline:
    """Parse and check a ``dag`` mapping built in code (the SDK)."""
    graph = parse_pipeline({"dag": dag}, source=source, base_dir=Path.cwd())
    return Pipeline(graph, dag, dag_hash(dag))


def dag_hash(dag: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(dag, sort_keys=True, default=str).encode()).hexdigest()


def compose(
    pipeline: Pipeline,
    options: RunOptions,
    executor: Optional[BaseExecutor] = None,
    events: RunObserver = NO_OBSERVER,
) -> Tuple[BaseExecutor, RunServices]:
    """The executor and the services of a run: configuration, plugins and parameters, each read once.

    ``executor`` replaces the configured one (an executor under test, not installed as a plugin);
    ``events`` watches the walk (the command line's progress).
    The run id is the one given, else ``MAGNUS_RUN_ID`` (as magnus 0.5.1 read it), else a new one
    that no run in the store has.
    """
    # The file read, wherever it was named (-c, MAGNUS_CONFIG_FILE, ...): steps run elsewhere read it too.
    options = dataclasses.replace(options, configuration_file=configuration_path(options.configuration_file))
    created, redactor = _configured_services(options.configuration_file, executor)
    parameters = initial_parameters(options.parameters_file)
    configured = executor or created.pop("executor")
    assert isinstance(configured, BaseExecutor)
    store: Any = created["run_log_store"]
    catalog = created["catalog"]
    assert isinstance(catalog, BaseCatalog)
    catalog.keep_out_of_puts(store.state_paths())  # a put of '**/*' never copies the run logs

    from magnus.names import RUN_ID_MAX_BYTES, check_path_name, check_tag, generate_run_id

    # A run id becomes a file or folder name in every store and catalog: checked before any is touched.
    run_id = options.run_id or os.environ.get(defaults.ENV_RUN_ID, "")
    if run_id:
        check_path_name(run_id, "--run-id" if options.run_id else defaults.ENV_RUN_ID, max_bytes=RUN_ID_MAX_BYTES)
    if options.use_cached:
        check_path_name(options.use_cached, "--use-cached", max_bytes=RUN_ID_MAX_BYTES)
    check_tag(options.tag)
    if not run_id:
        run_id = generate_run_id()
        while not configured.engine_names_runs and store.run_log_exists(run_id):
            run_id = generate_run_id()
    options = dataclasses.replace(options, run_id=run_id)

    services = RunServices(
        run_id=run_id,
        options=options,
        pipeline=pipeline,
        initial_parameters=parameters,
        run_config=_run_config(configured, created, options, pipeline),
        redactor=redactor,
        events=events,
        **created,  # type: ignore[arg-type]
    )
    if logger.isEnabledFor(logging.INFO):
        chosen = ", ".join(f"{name} {service.service_name}" for name, service in created.items())
        where = options.configuration_file or "defaults: no configuration file"
        logger.info("run %s: executor %s, %s (%s)", run_id, configured.service_name, chosen, where)
    services.redactor.add(services.secrets.values_to_mask())
    services.experiment_tracker.describe_run(configured.service_name)
    return configured, services


def _configured_services(
    configuration_file: str, executor: Optional[BaseExecutor] = None
) -> Tuple[Dict[str, BaseService], Redactor]:
    """The services ``configuration_file`` configures (the executor among them unless ``executor``
    replaces it), their secrets resolved; the redactor of those secrets."""
    configuration = load_configuration(configuration_file)
    source = configuration_file or "configuration"
    if executor is not None:
        del configuration["executor"]
    created = {name: create_service(name, block, source) for name, block in configuration.items()}
    services = [service for service in [executor, *created.values()] if service is not None]
    return created, _resolve_secrets(services, created["secrets"])


def _resolve_secrets(services: Iterable[BaseService], secrets: Any) -> Redactor:
    """Hand every service the secrets its configuration names; each value read is masked in the run."""
    redactor = Redactor()

    def secret(name: str) -> str:
        value: str = secrets.get(name)
        redactor.add([value])
        return value

    for service in services:
        with using(service, redactor):  # some open their connection here
            service.resolve_secrets(secret)
    return redactor


def _run_config(
    executor: BaseExecutor, created: Mapping[str, Any], options: RunOptions, pipeline: Pipeline
) -> Dict[str, Any]:
    """What the run log's ``run_config`` records (magnus 0.5.1's keys)."""
    return {
        "executor": executor.get_summary(),
        "run_log_store": created["run_log_store"].get_summary(),
        "secrets_handler": created["secrets"].get_summary(),
        "catalog_handler": created["catalog"].get_summary(),
        "experiment_tracker": created["experiment_tracker"].get_summary(),
        "pipeline_file": options.pipeline_file,
        "parameters_file": options.parameters_file,
        "configuration_file": options.configuration_file,
        "tag": options.tag,
        "run_id": options.run_id,
        "variables": {},
        "use_cached": bool(options.use_cached),
        "original_run_id": options.use_cached,
        "dag": dict(pipeline.definition),
        "dag_hash": pipeline.dag_hash,
        "execution_plan": "chained",
    }


# ---- a whole run -------------------------------------------------------------------------------------
def run_pipeline(
    pipeline: Pipeline,
    options: RunOptions,
    full: bool = True,
    executor: Optional[BaseExecutor] = None,
    events: RunObserver = NO_OBSERVER,
) -> Optional[RunLog]:
    """Run a whole pipeline with the configured executor (or ``executor``) and return its run log.

    None when the executor handed the run to an engine (Argo): its run log is written there.
    With ``full=False`` the log of a successful run may come without its steps (stores that keep
    them apart skip reading them all back); a failed run's log always has them. ``events`` watches
    the walk.
    """
    executor, services = compose(pipeline, options, executor, events)
    for service in services.services().values():
        integration.validate(executor, service)
        integration.configure_for_traversal(executor, service)
    executor.check_reach(services)
    executor.check(services)
    status = executor.execute_pipeline(services)
    if status == defaults.TRIGGERED:
        events.run_ended(services.run_id, status, 0.0)
        return None
    return services.run_log_store.get_run_log_by_id(services.run_id, full=full or status != defaults.SUCCESS)


def execute(
    pipeline_file: str,
    configuration_file: str = "",
    parameters_file: str = "",
    run_id: str = "",
    tag: str = "",
    use_cached: str = "",
    full: bool = True,
    events: RunObserver = NO_OBSERVER,
    cache: bool = False,
) -> Optional[RunLog]:
    """``magnus execute``: run the pipeline in ``pipeline_file`` (None when handed to an engine)."""
    options = RunOptions(
        pipeline_file=pipeline_file,
        configuration_file=configuration_file,
        parameters_file=parameters_file,
        run_id=run_id,
        tag=tag,
        use_cached=use_cached,
        cache=cache,
    )
    return run_pipeline(load_pipeline(pipeline_file), options, full=full, events=events)


# ---- a process that died doing a run ------------------------------------------------------------------
def record_lost_process(report: Mapping[str, Any], how: str, interrupted: bool, walked_run: bool) -> str:
    """Record what a process doing (part of) a run could not, as it ended without recording its end; what
    happened, in one line.

    ``report`` is what the process said it was doing (its run id, configuration file and the step
    running user code), ``how`` how it ended (``exited with code 0``). The step becomes FAIL with a
    last attempt saying why (``interrupted`` when a signal stopped it, as Ctrl-C would); when the
    process ``walked_run`` (``magnus execute``), every step and branch still in progress and the run
    are FAIL too. A run log store keeping its state in that process (the default in-memory one)
    kept nothing to record in.
    """
    from magnus.reach import Reach
    from magnus.runtime.step import INTERRUPTED, process_died
    from magnus.runtime.units import RunLogRecords

    run_id, step = str(report.get("run_id", "")), str(report.get("step", ""))
    what = f"step '{step}' of run '{run_id}'" if step else f"run '{run_id}'" if run_id else "magnus"
    line = f"{what}: its process {how}, before recording its end"
    if not run_id:
        return line
    created, redactor = _configured_services(configuration_path(str(report.get("configuration_file", ""))))
    store = created["run_log_store"]
    assert isinstance(store, BaseRunLogStore)
    if store.reach() == Reach.PROCESS:
        return f"{line} (its run log was kept in that process)"
    records = RunLogRecords(store, run_id, redactor)
    message = INTERRUPTED if interrupted else process_died(how)
    if step:
        records.died(step, message)
    if walked_run:
        records.run_lost(message)
    return f"{line}; recorded FAIL in the run log"


# ---- single tasks as pipelines -----------------------------------------------------------------------
def single_task_dag(name: str, task: Dict[str, Any]) -> Dict[str, Any]:
    """A pipeline of one task (for ``execute_function`` and ``execute_notebook``)."""
    return {
        "start_at": name,
        "steps": {
            name: {"type": "task", **task, "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }


def execute_task(
    task: Dict[str, Any], name: str, options: RunOptions, events: RunObserver = NO_OBSERVER
) -> Optional[RunLog]:
    """Run a single task as a pipeline of its own."""
    dag = single_task_dag(name, task)
    return run_pipeline(load_dag(dag, source=name), options, events=events)


def require_task_type(command_type: str) -> None:
    from magnus.plugins import is_installed, missing_plugin_message

    if not is_installed("tasks", command_type):
        raise UserInputError(missing_plugin_message("tasks", command_type))


__all__ = [
    "MagnusError",
    "RunOptions",
    "compose",
    "execute",
    "execute_task",
    "load_dag",
    "load_pipeline",
    "run_pipeline",
]

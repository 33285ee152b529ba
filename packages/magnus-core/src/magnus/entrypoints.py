"""What the CLI and the SDK call: load a pipeline and its config, build the run context, run.

Every input (pipeline, configuration, parameters file, plugins) is loaded and checked here,
before the run log exists or any step runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from magnus import defaults
from magnus.config import create_service, describe_source, load_configuration
from magnus.context import RunContext, set_current
from magnus.datastore.models import RunLog
from magnus.errors import MagnusError, PipelineDefinitionError, UserInputError
from magnus.graph import Graph, parse_pipeline
from magnus.parameters import load_parameters_file
from magnus.yaml_file import load_yaml

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode

logger = logging.getLogger(defaults.LOGGER_NAME)


def load_pipeline(pipeline_file: str) -> Tuple[Graph, Dict[str, Any]]:
    """Parse and check a pipeline YAML file; return its graph and its ``dag`` mapping."""
    document = load_yaml(pipeline_file, "pipeline file", lambda message: PipelineDefinitionError([message]))
    graph = parse_pipeline(document, source=pipeline_file, base_dir=Path(pipeline_file).parent)
    return graph, document["dag"]


def load_dag(dag: Dict[str, Any], source: str = "pipeline") -> Graph:
    """Parse and check a ``dag`` mapping built in code (the SDK)."""
    return parse_pipeline({"dag": dag}, source=source, base_dir=Path.cwd())


def dag_hash(dag: Dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(dag, sort_keys=True, default=str).encode()).hexdigest()


def build_context(
    *,
    graph: Optional[Graph],
    dag_definition: Dict[str, Any],
    pipeline_file: str = "",
    configuration_file: str = "",
    parameters_file: str = "",
    run_id: str = "",
    tag: str = "",
    use_cached: str = "",
) -> RunContext:
    """Load the configuration and every service, check the parameters file, set the run context."""
    configuration = load_configuration(configuration_file)
    source = describe_source(configuration_file)
    services = {name: create_service(name, block, source) for name, block in configuration.items()}
    if parameters_file:
        load_parameters_file(parameters_file)  # refuse a bad file before anything is created

    store: Any = services["run_log_store"]
    run_id = run_id or os.environ.get(defaults.ENV_RUN_ID, "")  # magnus 0.5.1 read it from there too
    if not run_id:
        from magnus.names import generate_run_id

        run_id = generate_run_id()
        while store.run_log_exists(run_id):
            run_id = generate_run_id()

    context = RunContext(
        executor=services["executor"],  # type: ignore[arg-type]
        run_log_store=store,
        catalog=services["catalog"],  # type: ignore[arg-type]
        secrets=services["secrets"],  # type: ignore[arg-type]
        experiment_tracker=services["experiment_tracker"],  # type: ignore[arg-type]
        pickler=services["pickler"],  # type: ignore[arg-type]
        run_id=run_id,
        dag=graph,
        dag_hash=dag_hash(dag_definition) if dag_definition else "",
        dag_definition=dag_definition,
        tag=tag,
        pipeline_file=pipeline_file,
        configuration_file=configuration_file,
        parameters_file=parameters_file,
        use_cached=bool(use_cached),
        original_run_id=use_cached,
        service_configs=configuration,
    )
    context.redactor.add(context.secrets.values_to_mask())
    set_current(context)
    return context


def execute_dag(
    graph: Graph,
    dag_definition: Dict[str, Any],
    *,
    pipeline_file: str = "",
    configuration_file: str = "",
    parameters_file: str = "",
    run_id: str = "",
    tag: str = "",
    use_cached: str = "",
    full: bool = True,
) -> Optional[RunLog]:
    """Run a whole pipeline with the configured executor and return its run log.

    None when the executor handed the run to an orchestrator (Argo): its run log is written there.
    With ``full=False`` the run log may come without its steps (stores that keep them apart skip
    reading them all back).
    """
    context = build_context(
        graph=graph,
        dag_definition=dag_definition,
        pipeline_file=pipeline_file,
        configuration_file=configuration_file,
        parameters_file=parameters_file,
        run_id=run_id,
        tag=tag,
        use_cached=use_cached,
    )
    status = context.executor.execute_pipeline(graph)
    if status == defaults.TRIGGERED:  # handed to an orchestrator: the run log is written there
        return None
    return context.run_log_store.get_run_log_by_id(context.run_id, full=full)


def execute(
    pipeline_file: str,
    configuration_file: str = "",
    parameters_file: str = "",
    run_id: str = "",
    tag: str = "",
    use_cached: str = "",
    full: bool = True,
) -> Optional[RunLog]:
    """``magnus execute``: run the pipeline in ``pipeline_file`` (None when handed to an orchestrator)."""
    graph, dag = load_pipeline(pipeline_file)
    return execute_dag(
        graph,
        dag,
        pipeline_file=pipeline_file,
        configuration_file=configuration_file,
        parameters_file=parameters_file,
        run_id=run_id,
        tag=tag,
        use_cached=use_cached,
        full=full,
    )


def _decode_map_variable(map_variable: str) -> defaults.TypeMapVariable:
    if not map_variable:
        return None
    try:
        decoded = json.loads(map_variable)
    except ValueError as exc:
        raise UserInputError(f"--map-variable: not JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise UserInputError("--map-variable: must be a JSON object of {iterate_as: value}")
    return decoded


def _step_context(
    run_id: str, pipeline_file: str, step_name: str, configuration_file: str, parameters_file: str, tag: str
) -> Tuple["BaseNode", RunContext]:
    """The node ``step_name`` of the pipeline, and a context for the existing run ``run_id``."""
    graph, dag = load_pipeline(pipeline_file)
    node = graph.find_node(step_name)
    context = build_context(
        graph=graph,
        dag_definition=dag,
        pipeline_file=pipeline_file,
        configuration_file=configuration_file,
        parameters_file=parameters_file,
        run_id=run_id,
        tag=tag,
    )
    return node, context


def execute_single_node(
    run_id: str,
    pipeline_file: str,
    step_name: str,
    map_variable: str = "",
    configuration_file: str = "",
    parameters_file: str = "",
    tag: str = "",
) -> str:
    """Run one step of a run that another process walks (a container, a pod); return its status."""
    variables = _decode_map_variable(map_variable)
    node, context = _step_context(run_id, pipeline_file, step_name, configuration_file, parameters_file, tag)
    if node.is_composite:
        raise UserInputError(f"step '{step_name}' is a {node.node_type}: run its branches with 'magnus fan'")
    context.executor.prepare_for_node_execution()
    context.executor.execute_node(node, variables)
    if node.is_terminal:  # how the dag it ends ended: a fail node's process fails its dag
        return defaults.SUCCESS if node.node_type == "success" else defaults.FAIL
    return context.run_log_store.get_step_log(node.step_log_name(variables), run_id).status


def fan(
    run_id: str,
    step_name: str,
    pipeline_file: str,
    mode: str,
    map_variable: str = "",
    configuration_file: str = "",
    parameters_file: str = "",
    tag: str = "",
) -> str:
    """Fan a composite step out (record its branches) or in (settle its status from them)."""
    if mode not in ("in", "out"):
        raise UserInputError(f"--mode must be 'in' or 'out', got '{mode}'")
    variables = _decode_map_variable(map_variable)
    node, context = _step_context(run_id, pipeline_file, step_name, configuration_file, parameters_file, tag)
    if not node.is_composite:
        raise UserInputError(f"step '{step_name}' is a {node.node_type}, not a parallel, map or dag step")
    context.executor.prepare_for_node_execution()
    if mode == "out":
        context.executor.fan_out(node, variables)
    else:
        context.executor.fan_in(node, variables)
    return context.run_log_store.get_step_log(node.step_log_name(variables), run_id).status


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


def execute_task(task: Dict[str, Any], name: str, **options: Any) -> Optional[RunLog]:
    """Run a single task as a pipeline of its own."""
    dag = single_task_dag(name, task)
    return execute_dag(load_dag(dag, source=name), dag, **options)


def require_task_type(command_type: str) -> None:
    from magnus.plugins import is_installed, missing_plugin_message

    if not is_installed("tasks", command_type):
        raise UserInputError(missing_plugin_message("tasks", command_type))


__all__ = [
    "MagnusError",
    "execute",
    "execute_dag",
    "execute_single_node",
    "execute_task",
    "fan",
    "load_pipeline",
]

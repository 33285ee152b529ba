"""A pipeline's graph as an Argo ``Workflow``, built with hera's models.

Every node becomes Argo steps that run magnus in a container; each container's ``command`` is
``["magnus"]`` and its ``args`` are a :class:`~magnus.runtime.request.StepRequest`'s
(``to_argv(program=())``), with the run id (``{{workflow.parameters.run_id}}``) and the map
position (``{{inputs.parameters.map_variable}}``) as placeholders Argo fills in:

- executable and terminal nodes: a container running ``magnus execute_single_node ...``;
- composites (parallel, dag): a *fan-out* container (``magnus fan ... -m out``), one DAG task per
  branch running the branch's own DAG template, and a *fan-in* container (``magnus fan ... -m in``)
  that settles the step from its branches;
- composites whose branches are known only at run time (``dynamic_branches``: map): the fan-out
  has core write the branches' map variables to ``--iterations-file``, read as an output
  parameter; the branch's DAG template runs once per value (``withParam``), receiving it as
  ``--map-variable``.

Routing follows the graph: a step runs when the step before it ``Succeeded`` (its ``next``) or
``Failed`` (its ``on_failure``, or the dag's fail node). Every step but the fail nodes has
``continueOn: {failed: true}``, so a failure routes instead of stopping the workflow; a fail node
exits non-zero, so its dag (and, at the top, the workflow) ends Failed, as the run log does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Union

from hera.workflows import models as m

from magnus import defaults
from magnus.graph import Graph
from magnus.nodes.base import BaseNode, ExecutableNode
from magnus.nodes.composite import CompositeNode
from magnus.parameters import encode_value
from magnus.runtime.request import StepRequest
from magnus_executor_argo.constants import (
    ENTRYPOINT,
    ITERATIONS,
    ITERATIONS_PATH,
    MAP_INPUT,
    MAP_VARIABLE,
    RETRIES,
    RUN_ID,
)
from magnus_executor_argo.names import dns_name
from magnus_executor_argo.paths import path_in_image
from magnus_executor_argo.settings import RetryStrategy, StepOverride

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices
    from magnus_executor_argo.executor import ArgoExecutor

API_VERSION = "argoproj.io/v1alpha1"


class ManifestBuilder:
    """Builds the Workflow (or, with a schedule, the CronWorkflow) of one run's pipeline.

    ``pipeline_file`` is the YAML pipeline the pods read (as the executor settled it). Files the
    pods read are named relative to the project folder, which the image holds as its working
    directory. A resumed run (``--use-cached``) has every container carry the run it resumes.
    """

    def __init__(self, executor: "ArgoExecutor", services: "RunServices", pipeline_file: str) -> None:
        assert services.pipeline is not None, "a run renders a pipeline"
        self.executor = executor
        self.graph = services.pipeline.graph
        exposed = executor.expose_parameters_as_inputs
        # Secret values are masked: a manifest is stored and shown (``argo get``), never secret.
        self.parameters = services.redactor.redact_data(dict(services.initial_parameters)) if exposed else {}
        self.pipeline_file = path_in_image(pipeline_file, "-f")
        self.configuration_file = path_in_image(executor.step_configuration_file(services), "-c")
        # Exposed parameters reach the pods as MAGNUS_PRM_ variables, not from the file.
        self.parameters_file = "" if exposed else path_in_image(services.options.parameters_file, "-p")
        self.tag = services.tag
        self.use_cached = services.original_run_id
        self.templates: Dict[str, m.Template] = {}

    # ---- the workflow ----------------------------------------------------------------------------
    def build(self) -> Union[m.Workflow, m.CronWorkflow]:
        """The CronWorkflow running the pipeline on the executor's schedule, or one Workflow."""
        spec = self.workflow_spec()
        executor = self.executor
        labels, annotations = executor.labels or None, executor.annotations or None
        if not executor.schedule:
            metadata = m.ObjectMeta(generate_name="magnus-", labels=labels, annotations=annotations)
            return m.Workflow(api_version=API_VERSION, kind="Workflow", metadata=metadata, spec=spec)
        name = executor.cron_workflow_name or dns_name(f"magnus-{Path(self.pipeline_file).stem}")
        cron = m.CronWorkflowSpec(
            schedules=list(executor.schedule),
            timezone=executor.timezone or None,
            concurrency_policy=executor.concurrency_policy,
            workflow_metadata=m.ObjectMeta(labels=labels) if labels else None,
            workflow_spec=spec,
        )
        metadata = m.ObjectMeta(name=name, labels=labels, annotations=annotations)
        return m.CronWorkflow(api_version=API_VERSION, kind="CronWorkflow", metadata=metadata, spec=cron)

    def workflow_spec(self) -> m.WorkflowSpec:
        """What a run of the pipeline is: its DAG and container templates, its arguments and volumes."""
        entry = self._dag_template(self.graph, in_map=False)
        ordered = [self.templates.pop(entry), *self.templates.values()]
        executor = self.executor
        arguments = [m.Parameter(name="run_id", value="{{workflow.uid}}")]
        arguments += [m.Parameter(name=name, value=encode_value(value)) for name, value in self.parameters.items()]
        return m.WorkflowSpec(
            entrypoint=entry,
            arguments=m.Arguments(parameters=arguments),
            templates=ordered,
            service_account_name=executor.service_account_name,
            active_deadline_seconds=executor.max_workflow_duration_in_seconds,
            parallelism=executor.parallelism,
            node_selector=executor.node_selector or None,
            tolerations=[m.Toleration(**toleration) for toleration in executor.tolerations] or None,
            volumes=[
                m.Volume(
                    name=volume.name,
                    persistent_volume_claim=m.PersistentVolumeClaimVolumeSource(claim_name=volume.name),
                )
                for volume in executor.persistent_volumes
            ]
            or None,
        )

    # ---- DAG templates -----------------------------------------------------------------------------
    def _dag_template(self, graph: Graph, in_map: bool) -> str:
        name = ENTRYPOINT if not graph.internal_branch_name else dns_name(graph.internal_branch_name)
        self.templates[name] = m.Template(name=name)  # reserve the name and its place
        tasks: List[m.DAGTask] = []
        ends: Dict[str, str] = {}
        starts: Dict[str, m.DAGTask] = {}
        for node in graph.steps.values():
            node_tasks = self._node_tasks(node, in_map)
            starts[node.name] = node_tasks[0]
            ends[node.name] = node_tasks[-1].name
            tasks.extend(node_tasks)
        for step_name, conditions in _predecessors(graph, ends).items():
            starts[step_name].depends = " || ".join(conditions)
        fail_name = graph.get_fail_node().name
        if not starts[fail_name].depends:  # nothing can fail into it: leave it out
            tasks.remove(starts[fail_name])
        inputs = m.Inputs(parameters=[m.Parameter(name=MAP_INPUT)]) if in_map else None
        self.templates[name] = m.Template(name=name, inputs=inputs, dag=m.DAGTemplate(tasks=tasks))
        return name

    def _node_tasks(self, node: BaseNode, in_map: bool) -> List[m.DAGTask]:
        """The DAG tasks of one node, first to last."""
        task_name = dns_name(node.name)
        passthrough = _map_arguments(in_map)
        if not isinstance(node, CompositeNode):
            template = self._container_template(node, in_map)
            fails_its_dag = node.is_terminal and node.ends_with == defaults.FAIL
            keeps_going = None if fails_its_dag else m.ContinueOn(failed=True)
            return [m.DAGTask(name=task_name, template=template, arguments=passthrough, continue_on=keeps_going)]

        fan_out = m.DAGTask(
            name=f"{task_name}-fan-out",
            template=self._container_template(node, in_map, fan="out"),
            arguments=passthrough,
        )
        dynamic = node.dynamic_branches
        branch_tasks = []
        for label, branch in node.labelled_branches():
            task = m.DAGTask(
                name=f"{task_name}-{dns_name(label)}",
                template=self._dag_template(branch, in_map=in_map or dynamic),
                depends=f"{fan_out.name}.Succeeded",
                continue_on=m.ContinueOn(failed=True),
                arguments=_map_arguments(True, "{{item}}") if dynamic else passthrough,
                with_param=f"{{{{tasks.{fan_out.name}.outputs.parameters.{ITERATIONS}}}}}" if dynamic else None,
            )
            branch_tasks.append(task)
        fan_in = m.DAGTask(
            name=f"{task_name}-fan-in",
            template=self._container_template(node, in_map, fan="in"),
            arguments=passthrough,
            depends=" && ".join(f"({task.name}.Succeeded || {task.name}.Failed)" for task in branch_tasks),
            continue_on=m.ContinueOn(failed=True),
        )
        return [fan_out, *branch_tasks, fan_in]

    # ---- container templates -----------------------------------------------------------------------
    def _request(self, node: BaseNode, in_map: bool, fan: str, retried: bool) -> StepRequest:
        """What the container asks magnus to do: run ``node``, or fan it out or in.

        The run id, the map position and (for a step Argo may relaunch, ``retried``) the retry
        number are placeholders Argo fills in. A composite whose branches are known only at run
        time (a map) has core write them, on fan-out, to the file its template outputs for
        ``withParam``.
        """
        dynamic = fan == "out" and isinstance(node, CompositeNode) and node.dynamic_branches
        return StepRequest(
            run_id=RUN_ID,
            pipeline_file=self.pipeline_file,
            step=node.internal_name,
            configuration_file=self.configuration_file,
            map_variable=MAP_VARIABLE if in_map else "",
            parameters_file=self.parameters_file,
            tag=self.tag,
            fan=fan,
            iterations_file=ITERATIONS_PATH if dynamic else "",
            use_cached=self.use_cached,
            retry=RETRIES if retried else "",
        )

    def _container_template(self, node: BaseNode, in_map: bool, fan: str = "") -> str:
        """The template running one node (``fan`` '') or fanning a composite out or in."""
        name = dns_name(node.internal_name + (f"-fan-{fan}" if fan else ""))
        override = self._override(node)
        executor = self.executor
        retry = self._retry_strategy(node, override) if not fan else None
        request = self._request(node, in_map, fan, retried=retry is not None)
        resources = override.resources if override and override.resources else executor.resources
        deadline = override.max_step_duration_in_seconds if override else None
        deadline = deadline or executor.max_step_duration_in_seconds
        container = m.Container(
            image=(override.image if override and override.image else executor.image),
            image_pull_policy=(override.image_pull_policy if override else None) or executor.image_pull_policy or None,
            command=["magnus"],
            args=request.to_argv(program=()),
            env=self._environment(override),
            resources=m.ResourceRequirements(
                requests={key: m.Quantity(root=value) for key, value in resources.requests.items()} or None,
                limits={key: m.Quantity(root=value) for key, value in resources.limits.items()} or None,
            )
            if resources and (resources.requests or resources.limits)
            else None,
            volume_mounts=[
                m.VolumeMount(name=volume.name, mount_path=volume.mount_path) for volume in executor.persistent_volumes
            ]
            or None,
        )
        outputs = None
        if request.iterations_file:
            outputs = m.Outputs(
                parameters=[m.Parameter(name=ITERATIONS, value_from=m.ValueFrom(path=request.iterations_file))]
            )
        self.templates[name] = m.Template(
            name=name,
            inputs=m.Inputs(parameters=[m.Parameter(name=MAP_INPUT)]) if in_map else None,
            container=container,
            outputs=outputs,
            active_deadline_seconds=m.IntOrString(root=str(deadline)) if deadline else None,
            retry_strategy=retry,
            node_selector=(override.node_selector if override and override.node_selector else None),
            tolerations=[m.Toleration(**t) for t in override.tolerations]
            if override and override.tolerations
            else None,
        )
        return name

    def _retry_strategy(self, node: BaseNode, override: Optional[StepOverride]) -> Optional[m.RetryStrategy]:
        """Argo's relaunches of a failed pod, for steps that run user code only.

        A fail node exits non-zero by design, and a stub, a success node or a fan-out/fan-in
        runs no user code: relaunching them would only repeat a certain outcome.
        """
        if not (isinstance(node, ExecutableNode) and node.task() is not None):
            return None
        chosen: RetryStrategy = (override.retry_strategy if override else None) or self.executor.retry_strategy
        if not chosen.limit:
            return None
        return m.RetryStrategy(limit=m.IntOrString(root=str(chosen.limit)), retry_policy=chosen.retry_policy)

    def _override(self, node: BaseNode) -> Optional[StepOverride]:
        chosen = node.override_name(self.executor.service_name)
        return self.executor.overrides[chosen] if chosen else None

    def _environment(self, override: Optional[StepOverride]) -> Optional[List[m.EnvVar]]:
        env = [
            m.EnvVar(name=f"{defaults.PARAMETER_PREFIX}{name}", value=f"{{{{workflow.parameters.{name}}}}}")
            for name in self.parameters
        ]
        env += [
            m.EnvVar(
                name=secret.environment_variable,
                value_from=m.EnvVarSource(
                    secret_key_ref=m.SecretKeySelector(name=secret.secret_name, key=secret.secret_key)
                ),
            )
            for secret in self.executor.secrets_from_k8s
        ]
        if override:
            env += [m.EnvVar(name=key, value=value) for key, value in sorted(override.environment.items())]
        return env or None


def _map_arguments(in_map: bool, value: str = MAP_VARIABLE) -> Optional[m.Arguments]:
    return m.Arguments(parameters=[m.Parameter(name=MAP_INPUT, value=value)]) if in_map else None


def _predecessors(graph: Graph, ends: Dict[str, str]) -> Dict[str, List[str]]:
    """For each step, the conditions (``task.Succeeded``/``task.Failed``) under which it runs."""
    conditions: Dict[str, List[str]] = {}
    fail_name = graph.get_fail_node().name
    for node in graph.steps.values():
        if node.is_terminal:
            continue
        conditions.setdefault(node.get_next_node(), []).append(f"{ends[node.name]}.Succeeded")
        on_failure = node.get_on_failure_node() or fail_name
        conditions.setdefault(on_failure, []).append(f"{ends[node.name]}.Failed")
    return conditions


def to_yaml(workflow: Union[m.Workflow, m.CronWorkflow]) -> str:
    """The manifest as YAML, keys in Argo's order, the same bytes for the same input."""
    import yaml

    data = json.loads(workflow.model_dump_json(by_alias=True, exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)

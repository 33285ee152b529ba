"""A pipeline's execution plan as an Argo ``Workflow``, built with hera's models.

Every unit of the plan (:mod:`magnus.runtime.plan`) becomes an Argo task; units that run magnus do
so in a container whose ``command`` is ``["magnus"]`` and whose ``args`` are the unit's launch
request (``to_argv(program=())``), with the run id (``{{workflow.parameters.run_id}}``) and the map
position (``{{inputs.parameters.map_variable}}``) as placeholders Argo fills in:

- ``step`` and ``end`` units: a container running ``magnus execute_single_node ...``;
- ``fan-out`` and ``fan-in``: containers running ``magnus fan ... -m out`` and ``-m in``;
- ``branch``: a DAG task running the branch's own DAG template; a branch run once per map item
  (``dynamic``) has core write the items' map variables to ``--iterations-file`` on fan-out, read
  as an output parameter, and runs once per value (``withParam``), receiving it as
  ``--map-variable``;
- a conditional's branch: its fan-out writes the label of the branch it chose, and each branch's
  task runs ``when`` that label is its own (the others are Skipped, which its fan-in accepts);
- a loop's branch: a recursive template, ``<loop>-iteration``: the branch's DAG, then ``magnus fan
  ... -m next`` deciding the next iteration (core records it and writes its map variable, or
  nothing when the loop ends), then the same template again over what it wrote. Core decides each
  end after at most ``max_iterations``, so the recursion is bounded by it.

Each dag of the pipeline is one DAG template, and each task's ``depends`` is the plan's routing
into its unit: ``X.Succeeded`` where X leads here on success, ``X.Failed`` on failure (a step's
``on_failure``, or its dag's fail node), a branch's end for a fan-in. Every task but the fail nodes
has ``continueOn: {failed: true}``, so a failure routes instead of stopping the workflow; a fail
node exits non-zero, so its dag (and, at the top, the workflow) ends Failed, as the run log does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Union

from hera.workflows import models as m

from magnus import defaults
from magnus.errors import UserInputError
from magnus.graph import Graph
from magnus.nodes.base import BaseNode, ExecutableNode
from magnus.nodes.composite import CompositeNode
from magnus.parameters import encode_value
from magnus.runtime import plan as kinds
from magnus.runtime.plan import Plan, PlannedUnit
from magnus.runtime.request import FanIn, FanOut, LaunchRequest, NextIteration, RunStep, without_double_braces
from magnus.runtime.services import RunOptions
from magnus_executor_argo.constants import (
    CHOSEN,
    ENTRYPOINT,
    ITERATIONS,
    ITERATIONS_PATH,
    LOOP_INPUT,
    LOOP_VARIABLE,
    MAP_INPUT,
    MAP_VARIABLE,
    RETRIES,
    RUN_ID,
    RUN_ID_ARGUMENT,
)
from magnus_executor_argo.names import dns_name
from magnus_executor_argo.paths import path_in_image
from magnus_executor_argo.settings import ArgoSettings, RetryStrategy, StepOverride

if TYPE_CHECKING:
    from magnus.runtime.services import RunServices

API_VERSION = "argoproj.io/v1alpha1"


class ManifestBuilder:
    """Builds the Workflow (or, with a schedule, the CronWorkflow) of one run's pipeline.

    ``pipeline_file`` is the YAML pipeline the pods read (as the executor settled it). Files the
    pods read are named relative to the project folder, which the image holds as its working
    directory. A resumed run (``--use-cached``) has every container carry the run it resumes.
    """

    def __init__(
        self, executor: ArgoSettings, plan: Plan, services: "RunServices", pipeline_file: str, configuration_file: str
    ) -> None:
        self.executor = executor
        self.plan = plan
        self.graph = services.pipeline.graph
        exposed = executor.expose_parameters_as_inputs
        # Secret values are masked: a manifest is stored and shown (``argo get``), never secret.
        self.parameters = services.redactor.redact_data(dict(services.initial_parameters)) if exposed else {}
        self.pipeline_file = path_in_image(pipeline_file, "-f")
        self.reference = RunOptions(
            run_id=RUN_ID,
            pipeline_file=self.pipeline_file,
            configuration_file=path_in_image(configuration_file, "-c"),
            # Exposed parameters reach the pods as MAGNUS_PRM_ variables, not from the file.
            parameters_file="" if exposed else path_in_image(services.options.parameters_file, "-p"),
            tag=services.tag,
            use_cached=services.original_run_id,
        )
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
        arguments = [m.Parameter(name=RUN_ID_ARGUMENT, value="{{workflow.uid}}")]
        # Argo fills {{...}} in a parameter's value wherever it is used: written so that none occurs.
        arguments += [
            m.Parameter(name=name, value=without_double_braces(encode_value(value)))
            for name, value in self.parameters.items()
        ]
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
        """The DAG template of one dag: a task per unit, each depending on what routes to it."""
        name = ENTRYPOINT if not graph.internal_branch_name else dns_name(graph.internal_branch_name)
        self.templates[name] = m.Template(name=name)  # reserve the name and its place
        units = self.plan.of_graph(graph)
        tasks = {unit.id: self._task(unit, in_map) for unit in units}
        for unit_id, depends in _incoming(self.plan, units).items():
            tasks[unit_id].depends = depends
        fail = self.plan.unit(graph.get_fail_node().internal_name)
        if not tasks[fail.id].depends:  # nothing can fail into it: leave it out
            del tasks[fail.id]
        inputs = m.Inputs(parameters=[m.Parameter(name=MAP_INPUT)]) if in_map else None
        self.templates[name] = m.Template(name=name, inputs=inputs, dag=m.DAGTemplate(tasks=list(tasks.values())))
        return name

    def _task(self, unit: PlannedUnit, in_map: bool) -> m.DAGTask:
        """The DAG task of one unit."""
        passthrough = _map_arguments(in_map)
        if unit.kind == kinds.BRANCH:
            assert unit.branch_graph is not None and isinstance(unit.node, CompositeNode)
            fan_out = task_name(self.plan.unit(kinds.fan_out_id(unit.node)))
            if unit.node.iterates:
                return m.DAGTask(
                    name=task_name(unit),
                    template=self._iteration_template(unit, in_map),
                    continue_on=m.ContinueOn(failed=True),
                    arguments=_iteration_arguments(in_map, MAP_VARIABLE),
                    with_param=f"{{{{tasks.{fan_out}.outputs.parameters.{ITERATIONS}}}}}",
                )
            return m.DAGTask(
                name=task_name(unit),
                template=self._dag_template(unit.branch_graph, in_map=in_map or unit.dynamic),
                continue_on=m.ContinueOn(failed=True),
                arguments=_map_arguments(True, "{{item}}") if unit.dynamic else passthrough,
                with_param=f"{{{{tasks.{fan_out}.outputs.parameters.{ITERATIONS}}}}}" if unit.dynamic else None,
                when=_when_chosen(fan_out, unit.label) if unit.node.chooses_branch else None,
            )
        fan = {kinds.FAN_OUT: "out", kinds.FAN_IN: "in"}.get(unit.kind, "")
        fails_its_dag = unit.kind == kinds.END and unit.node.ends_with == defaults.FAIL
        return m.DAGTask(
            name=task_name(unit),
            template=self._container_template(unit.node, in_map, fan),
            arguments=passthrough,
            continue_on=None if fails_its_dag else m.ContinueOn(failed=True),
        )

    def _iteration_template(self, unit: PlannedUnit, in_map: bool) -> str:
        """The template of one iteration of a loop: its branch, the decision, the next iteration (itself).

        Its inputs are the iteration's map position and, inside a map, the loop's own (what the
        decision is made at).
        """
        assert unit.branch_graph is not None
        name = dns_name(f"{unit.node.internal_name}-iteration")
        if name in self.templates:
            return name
        self.templates[name] = m.Template(name=name)  # reserve the name: the template runs itself
        body = m.DAGTask(
            name="body",
            template=self._dag_template(unit.branch_graph, in_map=True),
            arguments=_map_arguments(True),
            continue_on=m.ContinueOn(failed=True),
        )
        decide = m.DAGTask(
            name="next",
            template=self._container_template(unit.node, in_map, "next"),
            arguments=_map_arguments(in_map, LOOP_VARIABLE),
            depends="body.Succeeded",
        )
        again = m.DAGTask(
            name="again",
            template=name,
            arguments=_iteration_arguments(in_map, LOOP_VARIABLE),
            with_param=f"{{{{tasks.next.outputs.parameters.{ITERATIONS}}}}}",
            depends="next.Succeeded",
            continue_on=m.ContinueOn(failed=True),
        )
        inputs = [m.Parameter(name=MAP_INPUT)] + ([m.Parameter(name=LOOP_INPUT)] if in_map else [])
        self.templates[name] = m.Template(
            name=name, inputs=m.Inputs(parameters=inputs), dag=m.DAGTemplate(tasks=[body, decide, again])
        )
        return name

    # ---- container templates -----------------------------------------------------------------------
    def _request(self, node: BaseNode, in_map: bool, fan: str, retried: bool) -> LaunchRequest:
        """What the container asks magnus to do: run ``node``, or fan it out or in.

        The run id, the map position and (for a step Argo may relaunch, ``retried``) the retry
        number are placeholders Argo fills in. A composite whose branches are known only at run
        time (a map) has core write them, on fan-out, to the file its template outputs for
        ``withParam``.
        """
        run, step = self.reference, node.internal_name
        position = MAP_VARIABLE if in_map else ""
        if fan == "in":
            return FanIn(run=run, step=step, map_variable=position)
        if fan == "next":
            return NextIteration(run=run, step=step, map_variable=position, iterations_file=ITERATIONS_PATH)
        if fan == "out":
            assert isinstance(node, CompositeNode)
            written = node.dynamic_branches or node.chooses_branch
            return FanOut(run=run, step=step, map_variable=position, iterations_file=ITERATIONS_PATH if written else "")
        return RunStep(run=run, step=step, map_variable=position, retry=RETRIES if retried else "")

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
        if isinstance(request, (FanOut, NextIteration)) and request.iterations_file:
            written = CHOSEN if isinstance(node, CompositeNode) and node.chooses_branch else ITERATIONS
            outputs = m.Outputs(
                parameters=[m.Parameter(name=written, value_from=m.ValueFrom(path=request.iterations_file))]
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
        return self.executor.override_for(node)

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


def _iteration_arguments(in_map: bool, loop_position: str) -> m.Arguments:
    """What an iteration template is given: the iteration (``{{item}}``) and, inside a map, the loop's position."""
    parameters = [m.Parameter(name=MAP_INPUT, value="{{item}}")]
    if in_map:
        parameters.append(m.Parameter(name=LOOP_INPUT, value=loop_position))
    return m.Arguments(parameters=parameters)


def _when_chosen(fan_out: str, label: str) -> str:
    """Argo's ``when`` running a conditional's branch ``label`` only when its fan-out chose it.

    Raises:
        UserInputError: the label holds a quote, which Argo's expression could not compare.
    """
    if "'" in label or '"' in label:
        raise UserInputError(f"branch '{label}': Argo cannot compare a branch name holding a quote; rename it")
    return f"'{{{{tasks.{fan_out}.outputs.parameters.{CHOSEN}}}}}' == '{label}'"


def task_name(unit: PlannedUnit) -> str:
    """The name of a unit's task in its DAG template (unique there; a DNS label)."""
    name = dns_name(unit.node.name)
    if unit.kind in (kinds.FAN_OUT, kinds.FAN_IN):
        return f"{name}-{unit.kind}"
    if unit.kind == kinds.BRANCH:
        return f"{name}-{dns_name(unit.label)}"
    return name


# How a unit routing to another is written in ``depends``: on its success, its failure, or its end.
_ARGO_CONDITION = {
    kinds.SUCCEEDED: "{0}.Succeeded",
    kinds.FAILED: "{0}.Failed",
    "ended": "({0}.Succeeded || {0}.Failed)",
    CHOSEN: "({0}.Succeeded || {0}.Failed || {0}.Skipped)",  # a conditional's branch not chosen is Skipped
}


def _incoming(plan: Plan, units: List[PlannedUnit]) -> Dict[str, str]:
    """For each unit of one dag, the ``depends`` expression under which it runs: the plan's routes into it.

    A unit runs when any unit routing to it ended that way (``||``); a fan-in when every branch of
    its composite ended (``&&``).
    """
    ids = {unit.id for unit in units}
    routes: Dict[str, List[str]] = {}
    joins: Dict[str, List[str]] = {}
    for source, condition, target in plan.routes():
        if source in ids and target in ids:
            node = plan.unit(source).node
            skipped = condition == "ended" and isinstance(node, CompositeNode) and node.chooses_branch
            written = _ARGO_CONDITION[CHOSEN if skipped else condition].format(task_name(plan.unit(source)))
            (joins if condition == "ended" else routes).setdefault(target, []).append(written)
    return {
        **{target: " || ".join(conditions) for target, conditions in routes.items()},
        **{target: " && ".join(conditions) for target, conditions in joins.items()},
    }


def to_yaml(workflow: Union[m.Workflow, m.CronWorkflow]) -> str:
    """The manifest as YAML, keys in Argo's order, the same bytes for the same input."""
    import yaml

    data = json.loads(workflow.model_dump_json(by_alias=True, exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)

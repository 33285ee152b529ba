"""A pipeline's execution plan as an Amazon States Language definition of AWS Batch jobs.

Every unit of the plan (:mod:`magnus.runtime.plan`) that runs magnus becomes a Task state
``arn:aws:states:::batch:submitJob.sync`` whose container command is the unit's launch request
(``to_argv``), its run id, map position and retry number filled in by Step Functions
(:mod:`magnus_executor_aws.intrinsics`):

- ``step`` units: ``magnus execute_single_node ...``; a step running user code gets the ``Retry``
  of the configuration, its relaunches numbered in the run log (``--retry``);
- ``end`` units: the terminal node's job records its branch's (or the run's) end; at the top a
  ``Succeed`` or ``Fail`` state follows, in a branch a ``Succeed`` (the fan-in settles it);
- a composite: ``magnus fan ... -m out``, then a ``Parallel`` state of its branches (a parallel's,
  a nested dag's), or, for a map, a ``Map`` state over the items the fan-out wrote to S3
  (``ItemReader``: they never pass through the state payload) with ``MaxConcurrency`` (an item
  of one plain step, see :func:`walked_in_one_job`, is one job walking it: ``magnus
  execute_branch ...``), or, for a
  conditional, a ``Choice`` on the label the fan-out wrote to S3 (read by an ``aws-sdk`` Task)
  running that branch, or, for a loop, a cycle: the next iteration's position read from S3, a
  ``Choice`` walking it (a ``Parallel`` of its branch) or leaving, core's decision of the next
  (``magnus fan ... -m next``); then ``magnus fan ... -m in``.

Routing is the plan's: ``Next`` where a unit leads on success, ``Catch`` (``States.ALL``) where it
leads on failure (a step's ``on_failure``, else its dag's fail node). A job that fails (its step
failed, its container died) fails its Task state, so the Catch routes the run as the run log does.
Job results are dropped (``ResultPath: null``): the payload of a state stays the map position.
States nothing routes to (a fail node no step can fail into) are left out, as the States Language
requires.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from magnus import defaults
from magnus.errors import ConfigurationError, PipelineDefinitionError
from magnus.executor.base import walkable_whole
from magnus.nodes.base import ExecutableNode
from magnus.nodes.composite import CompositeNode
from magnus.runtime import plan as kinds
from magnus.runtime.request import FanIn, FanOut, LaunchRequest, NextIteration, RunStep, WalkBranch
from magnus.runtime.services import RunOptions
from magnus_executor_aws import intrinsics
from magnus_executor_aws.constants import SERVICE_NAME
from magnus_executor_aws.names import job_definition_name, job_name, state_name
from magnus_executor_aws.settings import JobResources, Retry, StepFunctionsSettings

if TYPE_CHECKING:
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode
    from magnus.runtime.plan import Plan, PlannedUnit

SUBMIT_JOB = "arn:aws:states:::batch:submitJob.sync"
READ_S3_OBJECT = "arn:aws:states:::s3:getObject"
# A conditional's choice, read from S3 into the state (the Map state's ItemReader reads lists only).
READ_S3_OBJECT_SDK = "arn:aws:states:::aws-sdk:s3:getObject"
# The state every job that records the run's end cannot run ends in.
RUN_FAILED = "magnus run failed"


@dataclasses.dataclass(frozen=True)
class JobDefinition:
    """One AWS Batch job definition: an image and the resources of the jobs using it."""

    name: str
    image: str
    vcpus: float
    memory: int
    job_role_arn: str

    def container_properties(self) -> Dict[str, Any]:
        """``containerProperties`` of RegisterJobDefinition (the command is each job's own)."""
        properties: Dict[str, Any] = {
            "image": self.image,
            "command": ["magnus", "--version"],
            "resourceRequirements": [
                {"type": "VCPU", "value": f"{self.vcpus:g}"},
                {"type": "MEMORY", "value": str(self.memory)},
            ],
        }
        if self.job_role_arn:
            properties["jobRoleArn"] = self.job_role_arn
        return properties


@dataclasses.dataclass
class Rendered:
    """A state machine's definition and the job definitions its Task states name."""

    definition: Dict[str, Any]
    job_definitions: Dict[str, JobDefinition]

    def to_json(self) -> str:
        """The definition as Step Functions takes it, the same bytes for the same pipeline."""
        return json.dumps(self.definition, indent=2, ensure_ascii=False) + "\n"

    def task_parameters(self) -> List[Tuple[str, Dict[str, Any]]]:
        """``(state name, Parameters)`` of every Task state, those in branches and maps included."""
        found: List[Tuple[str, Dict[str, Any]]] = []

        def walk(machine: Dict[str, Any]) -> None:
            for name, state in machine["States"].items():
                if state["Type"] == "Task":
                    found.append((name, state["Parameters"]))
                for branch in state.get("Branches", []):
                    walk(branch)
                if "ItemProcessor" in state:
                    walk(state["ItemProcessor"])

        walk(self.definition)
        return found


class DefinitionBuilder:
    """Builds the definition of one pipeline's plan; ``reference`` is what every launch request carries.

    ``reference`` names the files the jobs read (relative to the image's working directory), the
    tag and the run resumed; its run id is replaced by the execution's name.
    """

    def __init__(
        self, settings: StepFunctionsSettings, plan: "Plan", reference: RunOptions, prefix: str, comment: str = ""
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.reference = dataclasses.replace(reference, run_id=intrinsics.RUN_ID)
        self.prefix = prefix
        self.comment = comment
        self.job_definitions: Dict[str, JobDefinition] = {}

    def build(self) -> Rendered:
        """The definition; refused when two units would share a state's name (the States Language
        wants them unique in the whole machine).

        Raises:
            PipelineDefinitionError: one line naming the state.
        """
        machine = self._machine(self.plan.graphs[""], in_map=False)
        seen: Set[str] = set()
        for name in _state_names(machine):
            if name in seen:
                raise PipelineDefinitionError(
                    [f"two steps would be the state '{name}' of the state machine; rename one of them"]
                )
            seen.add(name)
        definition = {"Comment": self.comment, **machine} if self.comment else machine
        return Rendered(definition, dict(self.job_definitions))

    # ---- one dag ---------------------------------------------------------------------------------------
    def _machine(self, graph: "Graph", in_map: bool) -> Dict[str, Any]:
        """``{StartAt, States}`` of one dag: a state per unit (and the Parallel/Map of its composites)."""
        states: Dict[str, Dict[str, Any]] = {}
        top = not graph.internal_branch_name
        for unit in self.plan.of_graph(graph):
            if unit.kind == kinds.STEP:
                states[state_name(unit.id)] = self._step(unit, in_map)
            elif unit.kind == kinds.END:
                self._end(unit, in_map, top, states)
            elif unit.kind == kinds.FAN_OUT:
                self._composite(unit, in_map, states)
            elif unit.kind == kinds.FAN_IN:
                request = FanIn(run=self.reference, step=unit.node.internal_name, map_variable=_position(in_map))
                states[state_name(unit.id)] = self._routed(self._job(unit.node, request, None, in_map), unit)
        start = self._target(self.plan.entry(graph).id)
        return {"StartAt": start, "States": _reachable(start, states)}

    def _step(self, unit: "PlannedUnit", in_map: bool) -> Dict[str, Any]:
        node = unit.node
        override = self.settings.override_for(node)
        retry = _retry_of(node, override, self.settings.retry)
        end = self._success_after(unit) if retry is None else None
        request = RunStep(
            run=self.reference,
            step=node.internal_name,
            map_variable=_position(in_map),
            retry=intrinsics.RETRY if retry else "",
            then_end=end is not None,
        )
        state = self._routed(self._job(node, request, override, in_map), unit)
        if end is not None:  # the step's job records the end too: straight to the end's Succeed
            state["Next"] = state_name(f"{end.id} ended")
        if retry:
            state["Retry"] = [
                {
                    "ErrorEquals": ["States.ALL"],
                    "MaxAttempts": retry.max_attempts,
                    "IntervalSeconds": retry.interval_seconds,
                    "BackoffRate": retry.backoff_rate,
                }
            ]
        return state

    def _success_after(self, unit: "PlannedUnit") -> Optional["PlannedUnit"]:
        """The success end that follows the step ``unit``, when the step's job can record it too
        (``--then-end``): the end picks no override of its own. A run of n steps is then n jobs, not
        n + 1; on AWS each Batch job costs its scheduling and its container's start."""
        following = self.plan.unit(unit.on_success[0])
        node = following.node
        if following.kind != kinds.END or node.ends_with != defaults.SUCCESS:
            return None
        return following if self.settings.override_for(node) is None else None

    def _end(self, unit: "PlannedUnit", in_map: bool, top: bool, states: Dict[str, Dict[str, Any]]) -> None:
        """A terminal node: its job records the end; the branch (Succeed) or the run (Succeed, Fail) ends."""
        node = unit.node
        request = RunStep(run=self.reference, step=node.internal_name, map_variable=_position(in_map))
        name = state_name(unit.id)
        job = self._job(node, request, self.settings.override_for(node), in_map)
        if not top:
            ended = state_name(f"{unit.id} ended")
            states[name] = {**job, "Next": ended, "Catch": [_catch(ended)]}
            states[ended] = {"Type": "Succeed"}
            return
        if node.ends_with == defaults.SUCCESS:
            ended = state_name(f"{unit.id} ended")
            states[name] = {**job, "Next": ended, "Catch": [_catch(RUN_FAILED)]}
            states[ended] = {"Type": "Succeed"}
        else:  # the fail node's job exits 1 by design: either way the execution fails
            states[name] = {**job, "Next": RUN_FAILED, "Catch": [_catch(RUN_FAILED)]}
        states[RUN_FAILED] = {"Type": "Fail", "Error": "magnus.RunFailed", "Cause": "the run ended FAIL"}

    def _composite(self, unit: "PlannedUnit", in_map: bool, states: Dict[str, Dict[str, Any]]) -> None:
        """The fan-out of a composite, then its branches (Parallel, or Map over a map's items)."""
        node = unit.node
        assert isinstance(node, CompositeNode)
        if node.iterates:
            self._loop(unit, in_map, states)
            return
        if node.chooses_branch:
            self._conditional(unit, in_map, states)
            return
        branches = [self.plan.unit(branch) for branch in unit.on_success]
        fan_in = state_name(branches[0].fan_in) if branches else ""
        branches_state = state_name(f"{node.internal_name} branches")
        fan_out = state_name(unit.id)
        position = _position(in_map)
        if not node.dynamic_branches:
            request = FanOut(run=self.reference, step=node.internal_name, map_variable=position)
            states[fan_out] = {
                **self._job(node, request, None, in_map),
                "Next": branches_state,
                "Catch": [_catch(self._failure(unit))],
            }
            states[branches_state] = {
                "Type": "Parallel",
                "Branches": [self._machine(_branch_graph(branch), in_map) for branch in branches],
                "ResultPath": None,
                "Next": fan_in,
                "Catch": [_catch(fan_in)],
            }
            return
        location, bucket, folder = self._items_location(node)
        items_id = state_name(f"{node.internal_name} items")
        key = f"{intrinsics.RUN_ID}/{job_name(node.internal_name)}-{intrinsics.ITEMS_ID}.json"
        request = FanOut(
            run=self.reference, step=node.internal_name, map_variable=position, iterations_file=f"{location}/{key}"
        )
        states[items_id] = _naming_files(fan_out)
        states[fan_out] = {
            **self._job(node, request, None, in_map),
            "Next": branches_state,
            "Catch": [_catch(self._failure(unit))],
        }
        graph = _branch_graph(branches[0])
        if walked_in_one_job(node, graph, self.settings.retry):
            processor = self._item_job(node, branches[0])
        else:
            processor = self._machine(graph, in_map=True)
        map_state: Dict[str, Any] = {
            "Type": "Map",
            "ItemReader": {
                "Resource": READ_S3_OBJECT,
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {
                    "Bucket": bucket,
                    "Key.$": intrinsics.format_path([f"{folder}/" if folder else "", key], in_map),
                },
            },
            # an item is a child execution, named apart: the run id is passed down with the position
            "ItemSelector": {"map_variable.$": "$$.Map.Item.Value", "run_id.$": intrinsics.run_id(in_map)},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **processor},
            "ResultPath": None,
            "Next": fan_in,
            "Catch": [_catch(fan_in)],
        }
        if self.settings.max_concurrency:
            map_state["MaxConcurrency"] = self.settings.max_concurrency
        # An item's branch ends in Succeed whatever its steps did (every job's failure is caught), so
        # no item fails the Map; its fan-in settles the step from the run log.
        states[branches_state] = map_state

    def _conditional(self, unit: "PlannedUnit", in_map: bool, states: Dict[str, Dict[str, Any]]) -> None:
        """A conditional: its fan-out writes the label of the branch it chose to S3; a Task reads it
        (``aws-sdk:s3:getObject``), a ``Choice`` runs that branch (a ``Parallel`` of one), then the fan-in."""
        node = unit.node
        branches = [self.plan.unit(branch) for branch in unit.on_success]
        fan_in = state_name(branches[0].fan_in)
        location, bucket, folder = self._items_location(node)
        key = f"{intrinsics.RUN_ID}/{job_name(node.internal_name)}-{intrinsics.ITEMS_ID}.txt"
        names = {part: state_name(f"{node.internal_name} {part}") for part in ("items", "chosen", "choice")}
        request = FanOut(
            run=self.reference,
            step=node.internal_name,
            map_variable=_position(in_map),
            iterations_file=f"{location}/{key}",
        )
        failure = _catch(self._failure(unit))
        states[names["items"]] = _naming_files(state_name(unit.id))
        states[state_name(unit.id)] = {
            **self._job(node, request, None, in_map),
            "Next": names["chosen"],
            "Catch": [failure],
        }
        states[names["chosen"]] = {
            **_read_object(bucket, folder, key, in_map, {"label.$": "$.Body"}, "$.magnus_chosen"),
            "Next": names["choice"],
            "Catch": [failure],
        }
        choices = []
        for branch in branches:
            walked = state_name(f"{node.internal_name} branch {branch.label}")
            choices.append({"Variable": "$.magnus_chosen.label", "StringEquals": branch.label, "Next": walked})
            states[walked] = {
                "Type": "Parallel",
                "Branches": [self._machine(_branch_graph(branch), in_map)],
                "ResultPath": None,
                "Next": fan_in,
                "Catch": [_catch(fan_in)],
            }
        states[names["choice"]] = {"Type": "Choice", "Choices": choices, "Default": fan_in}

    def _loop(self, unit: "PlannedUnit", in_map: bool, states: Dict[str, Dict[str, Any]]) -> None:
        """A loop, as a cycle of states: the iteration's position is read from S3, a ``Choice`` walks it
        (a ``Parallel`` of its branch at that position) or goes to the fan-in, then core decides the next.

        The fan-out, then each decision (``magnus fan ... -m next``), writes the JSON list of the next
        iteration's position (``[]`` when the loop ends) to S3; an ``aws-sdk`` Task reads it into the
        state. An iteration that failed is recorded: core then ends the loop, and its fan-in settles it.
        """
        node = unit.node
        branch = self.plan.unit(unit.on_success[0])
        fan_in = state_name(branch.fan_in)
        location, bucket, folder = self._items_location(node)
        key = f"{intrinsics.RUN_ID}/{job_name(node.internal_name)}-{intrinsics.ITEMS_ID}.json"
        position = _position(in_map)
        parts = ("items", "position", "goes on", "iteration", "decision")
        names = {part: state_name(f"{node.internal_name} {part}") for part in parts}
        first = FanOut(
            run=self.reference, step=node.internal_name, map_variable=position, iterations_file=f"{location}/{key}"
        )
        decide = NextIteration(
            run=self.reference, step=node.internal_name, map_variable=position, iterations_file=f"{location}/{key}"
        )
        states[names["items"]] = _naming_files(state_name(unit.id))
        states[state_name(unit.id)] = {
            **self._job(node, first, None, in_map),
            "Next": names["position"],
            "Catch": [_catch(self._failure(unit))],
        }
        positions = {"positions.$": "States.StringToJson($.Body)"}
        states[names["position"]] = {
            **_read_object(bucket, folder, key, in_map, positions, "$.magnus_loop"),
            "Next": names["goes on"],
            "Catch": [_catch(fan_in)],
        }
        states[names["goes on"]] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.magnus_loop.positions[0]", "IsPresent": True, "Next": names["iteration"]}],
            "Default": fan_in,
        }
        states[names["iteration"]] = {
            "Type": "Parallel",
            # the iteration's steps read their position and the run id as a map item's do
            "Parameters": {"map_variable.$": "$.magnus_loop.positions[0]", "run_id.$": intrinsics.run_id(in_map)},
            "Branches": [self._machine(_branch_graph(branch), in_map=True)],
            "ResultPath": None,
            "Next": names["decision"],
            "Catch": [_catch(names["decision"])],
        }
        states[names["decision"]] = {
            **self._job(node, decide, None, in_map),
            "Next": names["position"],
            "Catch": [_catch(fan_in)],
        }

    def _items_location(self, node: "BaseNode") -> Tuple[str, str, str]:
        """The folder a map's items go through (``s3://bucket/folder``), its bucket and folder.

        Raises:
            ConfigurationError: none is configured.
        """
        location = self.settings.iterations_location
        if not location:
            raise ConfigurationError(
                f"step '{node.internal_name}': a map's items go through S3 on AWS Step Functions: set "
                "executor.config.iterations_location to an s3:// folder the jobs can write and the state machine read"
            )
        bucket, _, folder = location[len("s3://") :].partition("/")
        return location, bucket, folder

    def _failure(self, unit: "PlannedUnit") -> str:
        return self._target(unit.on_failure[0])

    def _target(self, unit_id: str) -> str:
        """The state a route into ``unit_id`` enters: a map's starts at its items' Pass state."""
        target = self.plan.unit(unit_id)
        node = target.node
        if (
            target.kind == kinds.FAN_OUT
            and isinstance(node, CompositeNode)
            and (node.dynamic_branches or node.chooses_branch or node.iterates)
        ):
            return state_name(f"{node.internal_name} items")
        return state_name(unit_id)

    def _item_job(self, node: "BaseNode", branch: "PlannedUnit") -> Dict[str, Any]:
        """``{StartAt, States}`` of a map item walked by one job (``magnus execute_branch``), then its end."""
        position = _position(in_map=True)
        request = WalkBranch(run=self.reference, step=node.internal_name, map_variable=position, branch=branch.id)
        walk, ended = state_name(f"{branch.id} walk"), state_name(f"{branch.id} ended")
        # its job fails when its branch did (exit 1): the fan-in settles the map from the run log
        job = {**self._job(node, request, None, in_map=True), "Next": ended, "Catch": [_catch(ended)]}
        return {"StartAt": walk, "States": {walk: job, ended: {"Type": "Succeed"}}}

    # ---- one job -----------------------------------------------------------------------------------
    def _routed(self, job: Dict[str, Any], unit: "PlannedUnit") -> Dict[str, Any]:
        return {**job, "Next": self._target(unit.on_success[0]), "Catch": [_catch(self._target(unit.on_failure[0]))]}

    def _job(
        self, node: "BaseNode", request: LaunchRequest, override: Optional[JobResources], in_map: bool
    ) -> Dict[str, Any]:
        """The Task state submitting the Batch job that does ``request`` (without its routing)."""
        settings = self.settings
        chosen = override or JobResources()
        definition = JobDefinition(
            name="",
            image=chosen.image or settings.image,
            vcpus=chosen.vcpus or settings.vcpus,
            memory=chosen.memory or settings.memory,
            job_role_arn=chosen.job_role_arn or settings.job_role_arn,
        )
        key = json.dumps(dataclasses.asdict(definition), sort_keys=True)
        definition = dataclasses.replace(definition, name=job_definition_name(self.prefix, key))
        self.job_definitions[definition.name] = definition
        environment = {**settings.environment, **chosen.environment, **request.environment_variables()}
        overrides: Dict[str, Any] = {"Command.$": intrinsics.array(request.to_argv(), in_map)}
        if environment:
            overrides["Environment"] = [{"Name": name, "Value": value} for name, value in sorted(environment.items())]
        return {
            "Type": "Task",
            "Resource": SUBMIT_JOB,
            "Parameters": {
                "JobName": job_name(node.internal_name),
                "JobQueue": chosen.job_queue or settings.job_queue,
                "JobDefinition": definition.name,
                "ContainerOverrides": overrides,
                "Timeout": {"AttemptDurationSeconds": chosen.timeout or settings.timeout},
            },
            "ResultPath": None,
        }


def walked_in_one_job(composite: "BaseNode", graph: "Graph", retry: Retry) -> bool:
    """Whether each item of the map ``composite`` (its branch ``graph``) is one Batch job walking it:
    when that changes nothing but the cost (:func:`~magnus.executor.base.walkable_whole`, and no
    ``retry`` of the configuration relaunches the step's job) and the branch holds one step, so the
    job's ``timeout`` is still that step's. An item then costs one job where it cost two (its
    step's and its end's)."""
    steps = [node for node in graph.steps.values() if not node.is_terminal]
    if len(steps) != 1 or _retry_of(steps[0], None, retry) is not None:
        return False
    return walkable_whole(composite, SERVICE_NAME)


def _position(in_map: bool) -> str:
    return intrinsics.MAP_VARIABLE if in_map else ""


def _naming_files(next_state: str) -> Dict[str, Any]:
    """A Pass state giving the files a composite's jobs write to S3 a name of their own
    (``$.magnus_items.id``): a composite inside a map's item is fanned out once per item."""
    return {"Type": "Pass", "Parameters": {"id.$": "States.UUID()"}, "ResultPath": "$.magnus_items", "Next": next_state}


def _read_object(
    bucket: str, folder: str, key: str, in_map: bool, selector: Dict[str, str], result_path: str
) -> Dict[str, Any]:
    """A Task reading the object ``key`` (under ``folder`` of ``bucket``) a job wrote into the state
    (``aws-sdk:s3:getObject``): ``selector`` shapes its ``Body``, kept at ``result_path``."""
    return {
        "Type": "Task",
        "Resource": READ_S3_OBJECT_SDK,
        "Parameters": {
            "Bucket": bucket,
            "Key.$": intrinsics.format_path([f"{folder}/" if folder else "", key], in_map),
        },
        "ResultSelector": selector,
        "ResultPath": result_path,
    }


def _catch(target: str) -> Dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "Next": target, "ResultPath": None}


def _branch_graph(unit: "PlannedUnit") -> "Graph":
    assert unit.branch_graph is not None
    return unit.branch_graph


def _retry_of(node: "BaseNode", override: Optional[JobResources], default: Retry) -> Optional[Retry]:
    """Relaunches of a step's failed job: steps running user code only (a stub or a terminal node's job
    would only repeat a certain outcome)."""
    if not (isinstance(node, ExecutableNode) and node.task() is not None):
        return None
    chosen = (override.retry if override else None) or default
    return chosen if chosen.max_attempts else None


def _reachable(start: str, states: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The states reached from ``start`` (Next, Catch), in the order they were made."""
    seen: Set[str] = set()
    queue: List[str] = [start]
    while queue:
        name = queue.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        following = [state.get("Next", ""), state.get("Default", "")]
        following += [route["Next"] for route in [*state.get("Catch", []), *state.get("Choices", [])]]
        queue.extend(target for target in following if target)
    return {name: state for name, state in states.items() if name in seen}


def _state_names(machine: Dict[str, Any]) -> List[str]:
    """Every state name of ``machine``, those of its Parallel branches and Map processors included."""
    names: List[str] = []
    for name, state in machine["States"].items():
        names.append(name)
        for branch in state.get("Branches", []):
            names.extend(_state_names(branch))
        if "ItemProcessor" in state:
            names.extend(_state_names(state["ItemProcessor"]))
    return names

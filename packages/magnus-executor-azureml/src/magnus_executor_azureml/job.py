"""A pipeline's execution plan as an Azure ML pipeline job (the YAML ``az ml job create`` and
``azure.ai.ml.load_job`` read).

Azure ML runs a node of a pipeline job once every node whose output it reads has *succeeded*; it
has no route taken on failure. The plan (`magnus.runtime.plan`) is rendered within that:

- each unit of the pipeline's top dag is a ``command`` node running magnus with the unit's launch
  request: ``magnus execute_single_node ...`` for a step or a terminal node, ``magnus fan ... -m
  out|in`` for a composite's fan-out and fan-in;
- "runs after" is data: every node writes an empty ``done`` folder, and the nodes that follow it on
  success take it as an input (``after_<node>``);
- a failure at the top routes to the pipeline's fail node *inside* the node that failed
  (``<request> || magnus execute_single_node ... fail``): the fail node records the run FAIL and
  exits 1, so the node and the pipeline job fail, as the run did;
- a composite's branches (parallel, nested dag) are one node each, walking the branch whole
  (``magnus execute_branch``): inside a branch core routes every ``on_failure``, retry, nested
  map, conditional or loop as a local run does. A branch that ended FAIL exits 1, which the node
  accepts (``|| test $? -eq 1``) so that its fan-in runs and settles the composite;
- a map's branch is a ``parallel_for`` node over the items its fan-out wrote (core's
  ``--iterations-file``, shaped by `magnus_executor_azureml.items`); its body walks the
  branch at one item's map position (``--map-variable ${{inputs.map_variable}}``);
- a conditional's branches are one node each, walking its branch only when the fan-out chose it
  (the label chosen is the fan-out's ``chosen`` output, an input of each branch's node);
- a loop's branch is a ``do_while`` node over a body node that walks one iteration, has core decide
  the next (``magnus fan ... -m next``) and sets the control output ``do_while`` reads
  (`magnus_executor_azureml.iteration`).

What Azure ML cannot express here is refused by the executor before rendering
(`magnus_executor_azureml.executor.AzureMLExecutor.check`). No secret value is written: the
job carries names of files and the run id only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from magnus import defaults
from magnus.errors import UserInputError
from magnus.names import relative_inside
from magnus.nodes.composite import CompositeNode
from magnus.runtime import plan as kinds
from magnus.runtime.plan import Plan, PlannedUnit
from magnus.runtime.request import FanIn, FanOut, LaunchRequest, NextIteration, RunStep, WalkBranch
from magnus.runtime.services import RunOptions
from magnus_executor_azureml.constants import (
    CHOSEN,
    CHOSEN_FILE,
    DONE,
    GO_ON,
    ITEMS,
    ITERATIONS_PATH,
    MAP_INPUT,
    MAX_DO_WHILE_ITERATIONS,
    NEXT_POSITION,
    PIPELINE_JOB_SCHEMA,
    POSITION,
    POSITION_FILE,
)
from magnus_executor_azureml.settings import AzureMLSettings, StepOverride

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode

# Stand for Azure ML's expressions while a command is quoted for the shell (they need no quoting).
_MAP_MARK = "MAGNUS_AZUREML_MAP_VARIABLE"
_MAP_PLACEHOLDER = "${{inputs." + MAP_INPUT + "}}"
_POSITION_MARK = "MAGNUS_AZUREML_POSITION"
_POSITION_PLACEHOLDER = '"$(cat ${{inputs.' + POSITION + "}}/" + POSITION_FILE + ')"'
_CHOSEN_MARK = "MAGNUS_AZUREML_CHOSEN"
_CHOSEN_PLACEHOLDER = "${{outputs." + CHOSEN + "}}/" + CHOSEN_FILE
_MARKS = {_MAP_MARK: _MAP_PLACEHOLDER, _POSITION_MARK: _POSITION_PLACEHOLDER, _CHOSEN_MARK: _CHOSEN_PLACEHOLDER}
_NOT_IN_NAME = re.compile(r"[^a-z0-9_]+")
# A branch walked whole ended FAIL (exit 1, recorded): its node succeeds, so that the fan-in settles it.
_RECORDED_FAILURE_IS_DONE = "test $? -eq 1"


def node_name(text: str) -> str:
    """A name Azure ML accepts for a node (lower case letters, digits, ``_``; a letter first), unique per text.

    Names that are already valid are kept; others get a short hash of the original appended.
    """
    readable = _NOT_IN_NAME.sub("_", text.replace(defaults.MAP_PLACEHOLDER, "map").lower()).strip("_") or "step"
    if readable == text and readable[0].isalpha() and len(readable) <= 200:
        return readable
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{readable[:200] if readable[0].isalpha() else 's_' + readable[:198]}_{digest}"


def unit_node_name(unit: PlannedUnit) -> str:
    """The node of one unit: the step's name, ``<composite>_fan_out``/``_fan_in``, ``<composite>_<branch>``."""
    name = node_name(unit.node.internal_name)
    if unit.kind in (kinds.FAN_OUT, kinds.FAN_IN):
        return f"{name}_{unit.kind.replace('-', '_')}"
    if unit.kind == kinds.BRANCH:
        return f"{name}_{node_name(unit.label)}"
    return name


class JobBuilder:
    """Builds the pipeline job (a dict, as its YAML) of one run's plan.

    ``reference`` is what every request carries (the run id and the files, relative to the code
    folder the nodes run in); ``code`` the code folder relative to where the YAML is written.
    """

    def __init__(
        self, settings: AzureMLSettings, plan: Plan, reference: RunOptions, code: str, display_name: str
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.reference = reference
        self.code = code
        self.display_name = display_name
        self.jobs: Dict[str, Dict[str, Any]] = {}

    def build(self) -> Dict[str, Any]:
        """The pipeline job: its settings and a node per unit of the top dag (branches walked whole)."""
        graph = self.plan.graphs[""]
        fail = self.plan.unit(graph.get_fail_node().internal_name)
        for unit in self._reached(self.plan.of_graph(graph)):
            self._add(unit, fail)
        settings = self.settings
        job: Dict[str, Any] = {
            "$schema": PIPELINE_JOB_SCHEMA,
            "type": "pipeline",
            "display_name": self.display_name,
            "experiment_name": settings.experiment_name,
            "tags": {"magnus_run_id": self.reference.run_id},
            "settings": {
                "default_compute": _compute(settings.compute),
                "continue_on_step_failure": settings.continue_on_step_failure,
                # Never reuse a node's earlier result: each node records its unit in the run log.
                "force_rerun": True,
            },
            "jobs": self.jobs,
        }
        return job

    def _reached(self, units: List[PlannedUnit]) -> List[PlannedUnit]:
        """The units of the top dag a run reaches on success, from its entry (the fail node is reached
        from inside the nodes that fail)."""
        by_id = {unit.id: unit for unit in units}
        reached: Dict[str, PlannedUnit] = {}
        queue = [self.plan.entry(self.plan.graphs[""]).id]
        while queue:
            unit = by_id[queue.pop(0)]
            if unit.id in reached:
                continue
            reached[unit.id] = unit
            following = [unit.fan_in] if unit.kind == kinds.BRANCH else list(unit.on_success)
            queue.extend(target for target in following if target in by_id)
        return [unit for unit in units if unit.id in reached]

    # ---- nodes -------------------------------------------------------------------------------------
    def _add(self, unit: PlannedUnit, fail: PlannedUnit) -> None:
        name = unit_node_name(unit)
        after = self._after(unit)
        if unit.kind == kinds.BRANCH and isinstance(unit.node, CompositeNode) and unit.node.iterates:
            self._add_do_while(unit, name, after)
            return
        if unit.kind == kinds.BRANCH and unit.dynamic:
            self._add_parallel_for(unit, name)  # its items bind it to its fan-out
            return
        command = self._command(self._request(unit)) + _shaping(unit)
        if unit.kind == kinds.BRANCH:
            command = f"{command} || {_RECORDED_FAILURE_IS_DONE}"
            if isinstance(unit.node, CompositeNode) and unit.node.chooses_branch:
                command = self._when_chosen(unit, command, after)
        elif unit.on_failure == (fail.id,):
            command = f"{command} || {self._command(RunStep(run=self.reference, step=fail.node.internal_name))}"
        outputs: Dict[str, Any] = {DONE: {"type": "uri_folder"}}
        if _writes_items(unit):
            outputs[ITEMS] = {"type": "string"}
        if _fans_out(unit, "chooses_branch"):
            outputs[CHOSEN] = {"type": "uri_folder"}
        if _fans_out(unit, "iterates"):
            outputs[POSITION] = {"type": "uri_folder"}
        self.jobs[name] = self._command_node(unit.node, command, after, outputs)

    def _when_chosen(self, unit: PlannedUnit, command: str, after: Dict[str, str]) -> str:
        """A conditional's branch: its node walks it when its fan-out chose it, and does nothing otherwise.

        The fan-out wrote the label chosen into its ``chosen`` folder, an input of every branch's node.
        """
        fan_out = unit_node_name(self.plan.unit(kinds.fan_out_id(unit.node)))
        after[CHOSEN] = "${{parent.jobs." + fan_out + ".outputs." + CHOSEN + "}}"
        label = shlex.quote(unit.label)
        chosen = '"$(cat ${{inputs.' + CHOSEN + "}}/" + CHOSEN_FILE + ')"'
        not_chosen = shlex.quote(f"branch {unit.label} not chosen")
        return f"if [ {chosen} = {label} ]; then {command}; else echo {not_chosen}; fi"

    def _add_do_while(self, unit: PlannedUnit, name: str, after: Dict[str, str]) -> None:
        """A loop's branch: a body node walking one iteration and deciding the next, and the ``do_while`` over it.

        The body walks the iteration at the position its ``position`` input holds (the fan-out's, then
        its own ``next_position`` through the ``mapping``), has core decide the next iteration
        (``magnus fan ... -m next``), and sets the control output ``go_on`` that ``do_while`` reads.
        An iteration that failed is recorded; core then ends the loop, whose fan-in settles it.
        """
        assert isinstance(unit.node, CompositeNode)
        body = f"{name}_body"
        run, step = self.reference, unit.node.internal_name
        walk = self._command(WalkBranch(run=run, step=step, map_variable=_POSITION_MARK, branch=unit.id))
        decide = self._command(NextIteration(run=run, step=step, iterations_file=ITERATIONS_PATH))
        write = shlex.join(["python", "-m", "magnus_executor_azureml.iteration", ITERATIONS_PATH])
        outputs = "${{outputs." + NEXT_POSITION + "}} ${{outputs." + GO_ON + "}}"
        command = f"({walk} || {_RECORDED_FAILURE_IS_DONE}) && {decide} && {write} {outputs}"
        fan_out = unit_node_name(self.plan.unit(kinds.fan_out_id(unit.node)))
        bound = {**after, POSITION: "${{parent.jobs." + fan_out + ".outputs." + POSITION + "}}"}
        body_outputs = {
            NEXT_POSITION: {"type": "uri_folder"},
            GO_ON: {"type": "boolean", "is_control": True},
            DONE: {"type": "uri_folder"},
        }
        self.jobs[body] = self._command_node(
            unit.node, command, bound, body_outputs, {POSITION: {"type": "uri_folder"}}
        )
        self.jobs[name] = {
            "type": "do_while",
            "body": "${{parent.jobs." + body + "}}",
            "condition": GO_ON,
            "mapping": {NEXT_POSITION: POSITION},
            "limits": {"max_iteration_count": _max_iterations(unit.node)},
        }

    def _add_parallel_for(self, unit: PlannedUnit, name: str) -> None:
        """A map's branch: a body node walking it at one item, and the ``parallel_for`` over the items."""
        body = f"{name}_body"
        request = WalkBranch(run=self.reference, step=unit.node.internal_name, map_variable=_MAP_MARK, branch=unit.id)
        command = f"{self._command(request)} || {_RECORDED_FAILURE_IS_DONE}"
        inputs = {MAP_INPUT: {"type": "string"}}
        self.jobs[body] = self._command_node(unit.node, command, {}, {DONE: {"type": "uri_folder"}}, inputs)
        fan_out = unit_node_name(self.plan.unit(kinds.fan_out_id(unit.node)))
        self.jobs[name] = {
            "type": "parallel_for",
            "body": "${{parent.jobs." + body + "}}",
            "items": "${{parent.jobs." + fan_out + ".outputs." + ITEMS + "}}",
        }

    def _after(self, unit: PlannedUnit) -> Dict[str, str]:
        """The inputs making ``unit``'s node run after the nodes leading to it on success (or ending, for a fan-in)."""
        sources = [
            source
            for source, condition, target in self.plan.routes()
            if target == unit.id and condition in (kinds.SUCCEEDED, "ended") and source in self.plan.units
        ]
        named = sorted(self._done_by(self.plan.unit(source)) for source in sources)
        return {f"after_{source}": "${{parent.jobs." + source + ".outputs." + DONE + "}}" for source in named}

    def _done_by(self, unit: PlannedUnit) -> str:
        """The node whose ``done`` output says ``unit`` ended: its own, or a loop's body (a ``do_while`` has no
        outputs; its body's are the last iteration's, read once the loop ended)."""
        name = unit_node_name(unit)
        return f"{name}_body" if self.jobs.get(name, {}).get("type") == "do_while" else name

    def _command_node(
        self,
        node: "BaseNode",
        command: str,
        after: Dict[str, str],
        outputs: Dict[str, Any],
        inputs: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        settings = self.settings
        override: Optional[StepOverride] = settings.overrides.get(node.override_name("azureml")) or None
        environment = (override.environment if override else None) or settings.environment
        variables = {**settings.environment_variables, **(override.environment_variables if override else {})}
        job: Dict[str, Any] = {
            "type": "command",
            "command": command,
            "code": self.code,
            "environment": environment if environment.startswith("azureml:") else {"image": environment},
        }
        if variables:
            job["environment_variables"] = dict(sorted(variables.items()))
        if override and override.compute:
            job["compute"] = _compute(override.compute)
        if override and (override.instance_count or override.instance_type):
            resources = {"instance_count": override.instance_count, "instance_type": override.instance_type}
            job["resources"] = {key: value for key, value in resources.items() if value is not None}
        loops = [name for name in after if self.jobs.get(name[len("after_") :], {}).get("type") == "parallel_for"]
        if not inputs and not loops and all(output["type"] == "uri_folder" for output in outputs.values()):
            if after:
                job["inputs"] = after
            job["outputs"] = outputs
            return job
        # Primitive inputs and outputs (a map's items and item), and an input from a parallel_for (whose
        # type the SDK does not look up), need the node's own component, declaring them.
        component = {**job, "outputs": outputs}
        component["inputs"] = {**(inputs or {}), **{name: {"type": "uri_folder"} for name in after}}
        placed: Dict[str, Any] = {key: component.pop(key) for key in ("compute", "resources") if key in component}
        typed: Dict[str, Any] = {"type": "command", "component": component, **placed}
        if after:
            typed["inputs"] = after
        return typed

    # ---- commands ----------------------------------------------------------------------------------
    def _request(self, unit: PlannedUnit) -> LaunchRequest:
        run, step = self.reference, unit.node.internal_name
        if unit.kind == kinds.FAN_OUT:
            written = _CHOSEN_MARK if _fans_out(unit, "chooses_branch") else ""
            written = ITERATIONS_PATH if _writes_items(unit) or _fans_out(unit, "iterates") else written
            return FanOut(run=run, step=step, iterations_file=written)
        if unit.kind == kinds.FAN_IN:
            return FanIn(run=run, step=step)
        if unit.kind == kinds.BRANCH:
            return WalkBranch(run=run, step=step, branch=unit.id)
        return RunStep(run=run, step=step)

    def _command(self, request: LaunchRequest) -> str:
        """The shell command doing ``request``, Azure ML's expressions in place of their marks.

        Raises:
            UserInputError: a value holds ``${{``, which Azure ML would read as one of its expressions.
        """
        argv = request.to_argv()
        for part in argv:
            if "${{" in part:
                raise UserInputError(
                    f"{part!r}: Azure ML would read '${{{{' in a command as one of its expressions; rename it"
                )
        command = shlex.join(argv)
        for mark, placeholder in _MARKS.items():
            command = command.replace(mark, placeholder)
        return command


def _shaping(unit: PlannedUnit) -> str:
    """What follows a fan-out writing core's iterations file: shaping it into what Azure ML iterates
    over (a map's ``parallel_for`` items, a loop's first position); '' for any other unit."""
    if _writes_items(unit):
        module, output = "items", ITEMS
    elif _fans_out(unit, "iterates"):
        module, output = "iteration", POSITION
    else:
        return ""
    shaping = shlex.join(["python", "-m", f"magnus_executor_azureml.{module}", ITERATIONS_PATH])
    return f" && {shaping} {'${{outputs.' + output + '}}'}"


def _fans_out(unit: PlannedUnit, flag: str) -> bool:
    """``unit`` is the fan-out of a composite whose ``flag`` (``chooses_branch``, ``iterates``) is set."""
    return unit.kind == kinds.FAN_OUT and isinstance(unit.node, CompositeNode) and bool(getattr(unit.node, flag))


def _max_iterations(node: "BaseNode") -> int:
    from magnus.nodes.loop import LoopNode

    return node.max_iterations if isinstance(node, LoopNode) else MAX_DO_WHILE_ITERATIONS


def _writes_items(unit: PlannedUnit) -> bool:
    """A map's fan-out: it writes the items its branch's parallel_for iterates over (a loop's fan-out
    writes its first position)."""
    return _fans_out(unit, "dynamic_branches") and not _fans_out(unit, "iterates")


def _compute(name: str) -> str:
    return name if name.startswith("azureml:") else f"azureml:{name}"


def relative_code(code: str, written_to: str) -> str:
    """The code folder as the YAML at ``written_to`` names it (relative to the YAML's folder)."""
    folder = os.path.dirname(os.path.abspath(written_to))
    return os.path.relpath(os.path.abspath(code), folder).replace(os.sep, "/")


def in_code(path: str, code: str, given_as: str) -> str:
    """``path`` relative to the code folder, where the nodes run.

    Raises:
        UserInputError: the path is outside the code folder, so the nodes cannot read it.
    """
    if not path:
        return path
    relative = relative_inside(path, code)
    if relative is None:
        raise UserInputError(
            f"{given_as} '{path}' is outside the code folder '{code}' (executor.config.code), which the nodes run in "
            "and Azure ML uploads; give a file inside it"
        )
    return relative


def to_yaml(job: Dict[str, Any]) -> str:
    """The job as YAML, keys in the order built, the same bytes for the same input."""
    import yaml

    return yaml.safe_dump(job, sort_keys=False, default_flow_style=False, width=120)


def problems(plan: Plan) -> List[str]:
    """What Azure ML cannot run of ``plan``, each in one line ([] when it renders)."""
    found: List[str] = []
    graph = plan.graphs[""]
    fail = graph.get_fail_node().internal_name
    for unit in plan.of_graph(graph):
        node = unit.node
        if _fans_out(unit, "iterates") and _max_iterations(node) > MAX_DO_WHILE_ITERATIONS:
            found.append(
                f"step '{node.name}': max_iterations {_max_iterations(node)} is more than Azure ML's do_while runs "
                f"({MAX_DO_WHILE_ITERATIONS}); lower it, or put the step in a dag step, whose branch magnus walks in "
                "one node"
            )
        if unit.kind in (kinds.STEP, kinds.FAN_OUT, kinds.FAN_IN) and unit.on_failure != (fail,):
            target = plan.unit(unit.on_failure[0]).node.name
            found.append(
                f"step '{node.name}': on_failure '{target}' cannot be rendered: Azure ML runs a node only after the "
                "nodes before it succeeded; put the step and its on_failure in a dag step, whose branch magnus walks "
                "in one node"
            )
    for walked in graph.walk():
        if walked.internal_branch_name and walked.override_name("azureml"):
            found.append(
                f"step '{walked.internal_name}': overrides.azureml applies to a node, and this step runs inside the "
                "node walking its branch; set it on the top-level composite step holding it"
            )
    return found

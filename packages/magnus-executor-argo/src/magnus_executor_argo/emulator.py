"""Running an Argo Workflow manifest's steps on this machine, without Kubernetes.

A small interpreter of the parts of Argo that magnus manifests use: DAG templates walked in
dependency order (``depends`` expressions over ``Succeeded``/``Failed``/``Skipped``/``Omitted``),
``withParam`` fan-out over an output parameter, ``when`` comparisons of two quoted strings (``==``,
``!=``; a task whose ``when`` is false is Skipped), templates that run themselves (recursion),
input and workflow parameters, ``continueOn``,
retries (a failed container relaunched up to ``retryStrategy.limit`` times, ``{{retries}}`` its
count of earlier launches) and step deadlines. A ``CronWorkflow`` is emulated as one of the
runs its schedule starts (its ``workflowSpec``). Each container's ``command``/``args`` runs as a real subprocess with
the container's environment (secrets come from a dictionary standing in for Kubernetes secrets),
in one working folder standing in for the image's, so run logs and catalogs on a shared folder
stand in for the persistent volume.

Template tags are filled as Argo's controller fills them (its ``util/template``,
``SubstituteParams`` and ``substitutePodParams``), so that text reaching a template where Argo
would read a tag in it shows here too:

- a tag is what lies between ``{{`` and the first ``}}`` after it, in the template's JSON text;
  one naming a variable becomes its value, any other is kept as written, and a ``{{`` without
  its ``}}`` fails the template;
- a template is filled several times: with the workflow's and its local variables, then with its
  inputs too; again for each relaunch (``{{retries}}``); then as the pod's spec. A tag inside a
  value filled in is therefore filled in turn: ``{{workflow.uid}}`` in a workflow parameter's
  value reaches a step's environment as the workflow's uid;
- a workflow parameter is its argument's value as written (Argo fills its tags where it is used);
- expression tags (``{{=...}}``) are not evaluated here: one is refused (:class:`TemplateTagError`),
  as Argo would evaluate it;
- before anything runs, every tag of the manifest's templates naming one of Argo's variables
  (``workflow.``, ``inputs.``, ``tasks.``, ...) must name one that exists there, as ``argo submit`` checks.

The one liberty: an output parameter read from a path in the pod (``valueFrom.path``) is read
from a temporary file of this machine instead: wherever that path appears in the container's
``args`` it is replaced by the temporary file's path (a pod's ``/tmp`` is its own; this machine's
is shared by every step), so the step writes its output there.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

SUCCEEDED, FAILED, SKIPPED, OMITTED = "Succeeded", "Failed", "Skipped", "Omitted"
_CONDITION = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)\.(Succeeded|Failed|Skipped|Omitted|Errored)")
# Tags naming these are Argo's variables, checked on submission (Argo's GlobalVarValidWorkflowVariablePrefix).
_VARIABLE_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
# Variables Argo knows only at run time, which its submission check lets through.
_RUNTIME_VARIABLES = (
    "item.",
    "outputs.",
    "tasks.name",
    "steps.name",
    "node.name",
    "pod.name",
    "workflow.creationTimestamp",
    "workflow.duration",
    "workflow.scheduledTime",
)


class TemplateTagError(ValueError):
    """A template Argo would not fill: a ``{{`` without its ``}}``, a variable that must resolve and
    does not, or an expression tag (which Argo evaluates; this emulator does not)."""


@dataclass
class StepRecord:
    """One container that ran: which template, with which arguments, and how it ended."""

    template: str
    args: List[str]
    phase: str
    output: str
    launches: int = 1


@dataclass
class Result:
    phase: str
    outputs: Dict[str, str] = field(default_factory=dict)


# ---- template tags, as Argo's util/template fills them -------------------------------------------------
def _pieces(text: str) -> Iterator[Tuple[str, Optional[str]]]:
    """``text`` as (literal, tag) pairs; the last tag is None. A tag ends at the first ``}}`` after its ``{{``."""
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            yield text[position:], None
            return
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateTagError(f"cannot find the end tag '}}}}' of {text[start : start + 80]!r}")
        yield text[position:start], text[start + 2 : end]
        position = end + 2


def fill(text: str, values: Mapping[str, str], strict: Sequence[str] = ()) -> str:
    """``text`` (JSON) with its tags filled as Argo's ``template.Replace`` fills them.

    A tag naming a key of ``values`` (spaces around it ignored) becomes its value, escaped as a
    JSON string's content; ``a{{key`` whose ``key`` is known becomes ``{{a`` and the value (Argo's
    "nested tags"); any other tag is kept as written, unless it starts with one of ``strict``.

    Raises:
        TemplateTagError: a ``{{`` without its ``}}``, an expression tag, a strict tag not filled.
    """
    filled = []
    for literal, tag in _pieces(text):
        filled.append(literal)
        if tag is None:
            break
        if tag.startswith("="):
            raise TemplateTagError(f"expression tag {{{{{tag}}}}}: Argo would evaluate it (not emulated)")
        key = tag.strip()
        nested = tag.rfind("{{")
        if key in values:
            filled.append(_escaped(values[key]))
        elif nested > 0 and tag[nested + 2 :] in values:
            filled.append("{{" + tag[:nested] + _escaped(values[tag[nested + 2 :]]))
        elif key.startswith(tuple(strict)):
            raise TemplateTagError(f"failed to resolve {{{{{tag}}}}}")
        else:
            filled.append("{{" + tag + "}}")
    return "".join(filled)


def fill_json(document: Any, values: Mapping[str, str], strict: Sequence[str] = ()) -> Any:
    """``document`` with the tags of its JSON text filled (:func:`fill`), read back."""
    return json.loads(fill(json.dumps(document, ensure_ascii=False), values, strict))


def _escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _inputs(template: Mapping[str, Any]) -> Dict[str, str]:
    parameters = template.get("inputs", {}).get("parameters", [])
    return {f"inputs.parameters.{p['name']}": str(p["value"]) for p in parameters if "value" in p}


def _arguments(task: Mapping[str, Any]) -> Dict[str, str]:
    return {arg["name"]: str(arg.get("value", "")) for arg in task.get("arguments", {}).get("parameters", [])}


class WorkflowEmulator:
    """Interprets one Workflow manifest (a dict, as rendered) and runs its containers here.

    Raises:
        TemplateTagError: a template names a variable Argo would not find (checked on creation).
    """

    def __init__(
        self,
        manifest: Dict[str, Any],
        *,
        workdir: Path,
        command_prefix: Optional[Sequence[str]] = None,
        secrets: Optional[Dict[Tuple[str, str], str]] = None,
        environment: Optional[Dict[str, str]] = None,
    ) -> None:
        spec = manifest["spec"]["workflowSpec"] if manifest.get("kind") == "CronWorkflow" else manifest["spec"]
        self.templates = {template["name"]: template for template in spec["templates"]}
        self.entrypoint = spec["entrypoint"]
        self.workdir = workdir
        self.command_prefix = list(command_prefix) if command_prefix else None
        self.secrets = secrets or {}
        self.environment = environment or {}
        self.uid = str(uuid.uuid4())
        self.name = f"magnus-{self.uid[:5]}"
        arguments = spec.get("arguments", {}).get("parameters", [])
        # A workflow parameter is its argument as written: Argo fills a tag in it where it is used.
        self.globals = {
            "workflow.uid": self.uid,
            "workflow.name": self.name,
            "workflow.namespace": "argo",
            **{f"workflow.parameters.{p['name']}": str(p.get("value", "")) for p in arguments},
        }
        self.steps: List[StepRecord] = []
        self._pods = 0
        for name, template in self.templates.items():
            self._check_tags(name, template)

    def run(self) -> str:
        """Run the workflow; its phase (``Succeeded`` or ``Failed``)."""
        return self._template(self.entrypoint, {}, self.name).phase

    # ---- what argo submit checks -----------------------------------------------------------------
    def _check_tags(self, name: str, template: Dict[str, Any]) -> None:
        known: Set[str] = {*self.globals, *(f"inputs.parameters.{p['name']}" for p in _parameters(template))}
        for task in template.get("dag", {}).get("tasks", []):
            produced = self.templates[task["template"]].get("outputs", {}).get("parameters", [])
            known |= {f"tasks.{task['name']}.outputs.parameters.{p['name']}" for p in produced}
        for _, tag in _pieces(json.dumps(template, ensure_ascii=False)):
            key = (tag or "").strip()
            if not key.startswith(_VARIABLE_PREFIXES) or key in known or key.startswith(_RUNTIME_VARIABLES):
                continue
            raise TemplateTagError(f"template {name}: failed to resolve {{{{{tag}}}}}")

    # ---- templates ---------------------------------------------------------------------------------
    def _template(self, name: str, arguments: Dict[str, str], task: str) -> Result:
        """Argo's ``executeTemplate``: the template given its arguments and filled (``ProcessArgs``), then run."""
        template = copy.deepcopy(self.templates[name])
        for parameter in _parameters(template):
            if parameter["name"] not in arguments:
                raise TemplateTagError(f"template {name}: inputs.parameters.{parameter['name']} was not supplied")
            parameter["value"] = arguments[parameter["name"]]
        if "dag" in template:
            return self._dag(self._substitute_params(template, {"tasks.name": task}))
        # A pod relaunched gets a new name with each launch; one launched once is named now.
        pod_name = "" if "retryStrategy" in template else self._pod_name(name)
        local = {"tasks.name": task, **({"pod.name": pod_name} if pod_name else {})}
        return self._container(self._substitute_params(template, local), pod_name)

    def _substitute_params(self, template: Dict[str, Any], local: Mapping[str, str]) -> Dict[str, Any]:
        """Argo's ``SubstituteParams``: the workflow's and local variables, then the template's inputs too."""
        values = {**self.globals, **local}
        first: Dict[str, Any] = fill_json(template, values)
        filled: Dict[str, Any] = fill_json(first, {**values, **_inputs(first)})
        return filled

    def _dag(self, template: Dict[str, Any]) -> Result:
        tasks = {task["name"]: task for task in template["dag"]["tasks"]}
        phases: Dict[str, str] = {}
        outputs: Dict[str, Dict[str, str]] = {}
        failed_hard = False
        while len(phases) < len(tasks):
            ready = [
                name
                for name, task in tasks.items()
                if name not in phases and all(dep in phases for dep in _dependencies(task.get("depends", "")))
            ]
            if not ready:
                raise RuntimeError(f"DAG {template['name']} cannot progress: {sorted(set(tasks) - set(phases))}")
            for name in ready:
                task = tasks[name]
                if task.get("depends") and not _evaluate(task["depends"], phases):
                    phases[name] = OMITTED
                    continue
                result = self._task(task, outputs)
                phases[name], outputs[name] = result.phase, result.outputs
                if result.phase == FAILED and not task.get("continueOn", {}).get("failed"):
                    failed_hard = True
        return Result(FAILED if failed_hard else SUCCEEDED)

    def _task(self, task: Dict[str, Any], outputs: Dict[str, Dict[str, str]]) -> Result:
        """One DAG task: its dependencies' outputs filled in (they must resolve), then run once or per item."""
        scope = {
            f"tasks.{name}.outputs.parameters.{key}": value
            for name, produced in outputs.items()
            for key, value in produced.items()
        }
        task = fill_json(task, {**self.globals, **scope}, strict=("tasks.", "steps."))
        if "when" in task and not _when(task["when"]):
            return Result(SKIPPED)
        if "withParam" not in task:
            return self._template(task["template"], _arguments(task), task["name"])
        items = json.loads(task.pop("withParam"))
        if not items:
            return Result(SKIPPED)
        phases = []
        for item in items:
            # Argo's processItem: the task filled with the item, every tag must resolve.
            value = item if isinstance(item, str) else json.dumps(item)
            expanded = fill_json(task, {**self.globals, "item": value}, strict=("",))
            phases.append(self._template(expanded["template"], _arguments(expanded), expanded["name"]).phase)
        return Result(FAILED if FAILED in phases else SUCCEEDED)

    def _container(self, template: Dict[str, Any], pod_name: str) -> Result:
        retrying = not pod_name
        retries = int(template.get("retryStrategy", {}).get("limit", 0))
        deadline = int(template.get("activeDeadlineSeconds", 3600))
        with tempfile.TemporaryDirectory(prefix="pod-") as pod:
            for launch in range(retries + 1):
                launched = template
                if retrying:  # each launch is filled again, knowing its number and its pod's name
                    pod_name = self._pod_name(template["name"])
                    launched = self._substitute_params(template, {"retries": str(launch), "pod.name": pod_name})
                container = fill_json(
                    launched["container"], {**self.globals, **_inputs(launched), "pod.name": pod_name}
                )
                command, args, env = self._command(container)
                # Each output parameter read from a path: a file of this machine, standing in for the path.
                output_files: Dict[str, Path] = {}
                for number, parameter in enumerate(launched.get("outputs", {}).get("parameters", [])):
                    if "path" in parameter.get("valueFrom", {}):
                        local = Path(pod) / f"output-{number}"
                        args = [str(local) if part == parameter["valueFrom"]["path"] else part for part in args]
                        output_files[parameter["name"]] = local
                done = subprocess.run(
                    [*command, *args], cwd=self.workdir, env=env, capture_output=True, text=True, timeout=deadline
                )
                if done.returncode == 0:
                    break
            phase = SUCCEEDED if done.returncode == 0 else FAILED
            self.steps.append(StepRecord(template["name"], args, phase, done.stdout + done.stderr, launch + 1))
            produced = {name: local.read_text() for name, local in output_files.items()} if phase == SUCCEEDED else {}
        return Result(phase, produced)

    def _command(self, container: Dict[str, Any]) -> Tuple[List[str], List[str], Dict[str, str]]:
        """The filled container's command (``magnus`` as ``command_prefix``), args and environment."""
        command = list(container.get("command", []))
        if self.command_prefix and command[:1] == ["magnus"]:
            command = [*self.command_prefix, *command[1:]]
        env = {**os.environ, **self.environment}
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = self.secrets[(ref["name"], ref["key"])]
        return command, list(container.get("args", [])), env

    def _pod_name(self, template: str) -> str:
        self._pods += 1
        return f"{self.name}-{template}-{self._pods}"


def _parameters(template: Mapping[str, Any]) -> List[Dict[str, Any]]:
    parameters: List[Dict[str, Any]] = template.get("inputs", {}).get("parameters", [])
    return parameters


def _dependencies(depends: str) -> List[str]:
    return [match.group(1) for match in _CONDITION.finditer(depends)]


_COMPARISON = re.compile(r"\s*'([^']*)'\s*(==|!=)\s*'([^']*)'\s*")


def _when(expression: str) -> bool:
    """A filled ``when`` expression comparing two quoted strings (what magnus manifests use)."""
    match = _COMPARISON.fullmatch(expression)
    if match is None:
        raise ValueError(f"unsupported when expression: {expression}")
    left, operator, right = match.groups()
    return (left == right) if operator == "==" else (left != right)


def _evaluate(depends: str, phases: Dict[str, str]) -> bool:
    """An Argo ``depends`` expression over the phases of finished tasks."""
    python = _CONDITION.sub(lambda match: str(phases.get(match.group(1)) == match.group(2)), depends)
    python = python.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    if not re.fullmatch(r"[\sA-Za-z()]*", python) or set(re.findall(r"[A-Za-z]+", python)) - {
        "True",
        "False",
        "and",
        "or",
        "not",
    }:
        raise ValueError(f"unsupported depends expression: {depends}")
    return bool(eval(python, {"__builtins__": {}}, {}))

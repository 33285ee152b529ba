"""Running an Argo Workflow manifest's steps on this machine, without Kubernetes.

A small interpreter of the parts of Argo that magnus manifests use: DAG templates walked in
dependency order (``depends`` expressions over ``Succeeded``/``Failed``/``Skipped``/``Omitted``),
``withParam`` fan-out over an output parameter, input and workflow parameters, ``continueOn``,
retries (a failed container relaunched up to ``retryStrategy.limit`` times, ``{{retries}}`` its
count of earlier launches) and step deadlines. A ``CronWorkflow`` is emulated as one of the
runs its schedule starts (its ``workflowSpec``). Each container's ``command``/``args`` runs as a real subprocess with
the container's environment (secrets come from a dictionary standing in for Kubernetes secrets),
in one working folder standing in for the image's, so run logs and catalogs on a shared folder
stand in for the persistent volume.

The one liberty: an output parameter read from a path in the pod (``valueFrom.path``) is read
from a temporary file of this machine instead: wherever that path appears in the container's
``args`` it is replaced by the temporary file's path (a pod's ``/tmp`` is its own; this machine's
is shared by every step), so the step writes its output there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

SUCCEEDED, FAILED, SKIPPED, OMITTED = "Succeeded", "Failed", "Skipped", "Omitted"
_CONDITION = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)\.(Succeeded|Failed|Skipped|Omitted|Errored)")
_PLACEHOLDER = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")


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


class WorkflowEmulator:
    """Interprets one Workflow manifest (a dict, as rendered) and runs its containers here."""

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
        self.workflow_parameters = {
            parameter["name"]: self._substitute(str(parameter.get("value", "")), {})
            for parameter in spec.get("arguments", {}).get("parameters", [])
        }
        self.steps: List[StepRecord] = []

    def run(self) -> str:
        """Run the workflow; its phase (``Succeeded`` or ``Failed``)."""
        return self._template(self.entrypoint, {}).phase

    # ---- templates ---------------------------------------------------------------------------------
    def _template(self, name: str, inputs: Dict[str, str]) -> Result:
        template = self.templates[name]
        if "dag" in template:
            return self._dag(template, inputs)
        return self._container(template, inputs)

    def _dag(self, template: Dict[str, Any], inputs: Dict[str, str]) -> Result:
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
                result = self._task(task, inputs, outputs)
                phases[name], outputs[name] = result.phase, result.outputs
                if result.phase == FAILED and not task.get("continueOn", {}).get("failed"):
                    failed_hard = True
        return Result(FAILED if failed_hard else SUCCEEDED)

    def _task(self, task: Dict[str, Any], inputs: Dict[str, str], outputs: Dict[str, Dict[str, str]]) -> Result:
        scope = {**{f"inputs.parameters.{key}": value for key, value in inputs.items()}}
        for task_name, produced in outputs.items():
            for key, value in produced.items():
                scope[f"tasks.{task_name}.outputs.parameters.{key}"] = value
        arguments = task.get("arguments", {}).get("parameters", [])
        if "withParam" not in task:
            values = {arg["name"]: self._substitute(str(arg.get("value", "")), scope) for arg in arguments}
            return self._template(task["template"], values)
        items = json.loads(self._substitute(task["withParam"], scope))
        if not items:
            return Result(SKIPPED)
        phases = []
        for item in items:
            item_scope = {**scope, "item": item if isinstance(item, str) else json.dumps(item)}
            values = {arg["name"]: self._substitute(str(arg.get("value", "")), item_scope) for arg in arguments}
            phases.append(self._template(task["template"], values).phase)
        return Result(FAILED if FAILED in phases else SUCCEEDED)

    def _container(self, template: Dict[str, Any], inputs: Dict[str, str]) -> Result:
        scope = {f"inputs.parameters.{key}": value for key, value in inputs.items()}
        retries = int(template.get("retryStrategy", {}).get("limit", 0))
        if "retryStrategy" in template:  # Argo defines {{retries}} in templates that retry only
            scope["retries"] = "{{retries}}"
        container = template["container"]
        command = [self._substitute(part, scope) for part in container.get("command", [])]
        args = [self._substitute(part, scope) for part in container.get("args", [])]
        if self.command_prefix and command[:1] == ["magnus"]:
            command = [*self.command_prefix, *command[1:]]
        env = {**os.environ, **self.environment}
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = self._substitute(variable["value"], scope)
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = self.secrets[(ref["name"], ref["key"])]
        deadline = int(template.get("activeDeadlineSeconds", 3600))
        with tempfile.TemporaryDirectory(prefix="pod-") as pod:
            # Each output parameter read from a path: a file of this machine, standing in for the path.
            output_files: Dict[str, Path] = {}
            for number, parameter in enumerate(template.get("outputs", {}).get("parameters", [])):
                if "path" in parameter.get("valueFrom", {}):
                    local = Path(pod) / f"output-{number}"
                    args = [str(local) if part == parameter["valueFrom"]["path"] else part for part in args]
                    output_files[parameter["name"]] = local
            for launch in range(retries + 1):
                launched = [part.replace("{{retries}}", str(launch)) for part in args]
                done = subprocess.run(
                    [*command, *launched], cwd=self.workdir, env=env, capture_output=True, text=True, timeout=deadline
                )
                if done.returncode == 0:
                    break
            phase = SUCCEEDED if done.returncode == 0 else FAILED
            self.steps.append(StepRecord(template["name"], launched, phase, done.stdout + done.stderr, launch + 1))
            produced = {name: local.read_text() for name, local in output_files.items()} if phase == SUCCEEDED else {}
        return Result(phase, produced)

    def _substitute(self, text: str, scope: Dict[str, str]) -> str:
        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "workflow.uid":
                return self.uid
            if key.startswith("workflow.parameters."):
                return self.workflow_parameters[key.split(".", 2)[2]]
            if key in scope:
                return scope[key]
            raise KeyError(f"no value for {{{{{key}}}}}")

        return _PLACEHOLDER.sub(value, text)


def _dependencies(depends: str) -> List[str]:
    return [match.group(1) for match in _CONDITION.finditer(depends)]


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

"""Running a rendered Azure ML pipeline job's nodes on this machine, in the order Azure ML would.

A small interpreter of what magnus's jobs use: a ``command`` node runs once every node whose output
it takes as an input succeeded (``${{parent.jobs.X.outputs.Y}}``); its command runs in ``bash -c``
in the code folder, with ``${{outputs.NAME}}`` replaced by a file standing in for the output and
``${{inputs.NAME}}`` by the input's value; a ``parallel_for`` node runs its body once per item of the
JSON list its ``items`` output holds, each item's values as the body's inputs. A node that failed
stops the nodes after it, as in Azure ML (``continue_on_step_failure: false`` stops the job).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Set

_BINDING = re.compile(r"\$\{\{parent\.jobs\.([A-Za-z0-9_]+)(?:\.outputs\.([A-Za-z0-9_]+))?\}\}")


@dataclass
class Walked:
    """What ran: each command with its exit code and output, and the job's status."""

    commands: List[Dict[str, Any]] = field(default_factory=list)
    status: str = "Completed"


class JobWalker:
    """Walks one pipeline job (the dict of its YAML) in ``code`` with ``environment``; outputs under ``scratch``."""

    def __init__(self, job: Mapping[str, Any], code: Path, scratch: Path, environment: Mapping[str, str]) -> None:
        self.jobs: Dict[str, Dict[str, Any]] = dict(job["jobs"])
        self.code = code
        self.scratch = scratch
        self.environment = dict(environment)
        self.walked = Walked()
        self.bodies: Set[str] = {_BINDING.fullmatch(node["body"])[1] for node in self.jobs.values() if "body" in node}  # type: ignore[index]

    def walk(self) -> Walked:
        done: Set[str] = set()
        pending = [name for name in self.jobs if name not in self.bodies]
        while pending:
            ready = [name for name in pending if self._sources(name) <= done]
            if not ready:  # what is left waits on a node that failed
                break
            for name in ready:
                pending.remove(name)
                if self._run(name):
                    done.add(name)
                else:
                    self.walked.status = "Failed"
                    return self.walked
        return self.walked

    def _sources(self, name: str) -> Set[str]:
        node = self.jobs[name]
        bindings = [*node.get("inputs", {}).values(), node.get("items", "")]
        return {match[1] for value in bindings if isinstance(value, str) for match in _BINDING.finditer(value)}

    def _run(self, name: str) -> bool:
        node = self.jobs[name]
        if node["type"] == "parallel_for":
            source, output = _BINDING.fullmatch(node["items"]).groups()  # type: ignore[union-attr]
            items = json.loads(self._output(source, output).read_text())
            body = _BINDING.fullmatch(node["body"])[1]  # type: ignore[index]
            return all(self._command(body, item) for item in items)
        return self._command(name, {})

    def _command(self, name: str, values: Mapping[str, str]) -> bool:
        node = self.jobs[name]
        spec = node.get("component", node)
        command: str = spec["command"]
        for output in spec.get("outputs", {}):
            command = command.replace("${{outputs." + output + "}}", str(self._output(name, output)))
        for key, value in values.items():
            command = command.replace("${{inputs." + key + "}}", value)
        assert "${{" not in command, command
        environment = {**os.environ, **self.environment, **spec.get("environment_variables", {})}
        done = subprocess.run(
            ["bash", "-c", command], cwd=self.code, env=environment, capture_output=True, text=True, timeout=600
        )
        self.walked.commands.append({"node": name, "command": command, "exit": done.returncode, "output": done.stderr})
        return done.returncode == 0

    def _output(self, node: str, output: str) -> Path:
        path = self.scratch / node / output
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

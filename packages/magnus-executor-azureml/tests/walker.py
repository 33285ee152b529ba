"""Running a rendered Azure ML pipeline job's nodes on this machine, in the order Azure ML would.

A small interpreter of what magnus's jobs use: a ``command`` node runs once every node whose output
it takes as an input succeeded (``${{parent.jobs.X.outputs.Y}}``); its command runs in ``bash -c``
in the code folder, with ``${{outputs.NAME}}`` replaced by a folder (``uri_folder``) or a file (a
primitive) standing in for the output and ``${{inputs.NAME}}`` by the input's value (a bound output's
path); a ``parallel_for`` node runs its body once per item of the JSON list its ``items`` output
holds, each item's values as the body's inputs; a ``do_while`` node runs its body while the body's
``condition`` output holds ``true`` (at most ``limits.max_iteration_count`` times), each turn's
``mapping`` outputs as the next turn's inputs (copied, as Azure ML gives each turn its own folders).
A node that failed stops the nodes after it, as in Azure ML (``continue_on_step_failure: false``
stops the job).
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
                    if "body" in self.jobs[name]:  # the body's outputs are the last turn's, read after the loop
                        done.add(_BINDING.fullmatch(self.jobs[name]["body"])[1])  # type: ignore[index]
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
        if node["type"] == "do_while":
            return self._do_while(node)
        return self._command(name, {})

    def _do_while(self, node: Mapping[str, Any]) -> bool:
        body = _BINDING.fullmatch(node["body"])[1]  # type: ignore[index]
        values: Dict[str, str] = {}
        for turn in range(node["limits"]["max_iteration_count"]):
            if not self._command(body, values):
                return False
            if json.loads(self._output(body, node["condition"]).read_text()) is not True:
                return True
            for output, given_to in node["mapping"].items():
                kept = self.scratch / body / f"turn-{turn}" / output
                shutil.copytree(self._output(body, output), kept)
                values[given_to] = str(kept)
        return True

    def _command(self, name: str, values: Mapping[str, str]) -> bool:
        node = self.jobs[name]
        spec = node.get("component", node)
        # Each Azure ML node runs in its own container, with its own /tmp: walks side by side must not share one.
        private = self.scratch / "tmp"
        private.mkdir(parents=True, exist_ok=True)
        command: str = spec["command"].replace("/tmp/", f"{private}/")
        for output in spec.get("outputs", {}):
            command = command.replace("${{outputs." + output + "}}", str(self._output(name, output)))
        bound = {key: self._bound(value) for key, value in node.get("inputs", {}).items()}
        for key, value in {**bound, **values}.items():
            command = command.replace("${{inputs." + key + "}}", value)
        assert "${{" not in command, command
        environment = {**os.environ, **self.environment, **spec.get("environment_variables", {})}
        done = subprocess.run(
            ["bash", "-c", command], cwd=self.code, env=environment, capture_output=True, text=True, timeout=600
        )
        self.walked.commands.append({"node": name, "command": command, "exit": done.returncode, "output": done.stderr})
        return done.returncode == 0

    def _bound(self, value: str) -> str:
        """An input's value: the path of the output it is bound to (its binding as written otherwise)."""
        match = _BINDING.fullmatch(value)
        return str(self._output(match[1], match[2])) if match and match[2] else value

    def _output(self, node: str, output: str) -> Path:
        spec = self.jobs[node].get("component", self.jobs[node])
        path = self.scratch / node / output
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec.get("outputs", {}).get(output, {}).get("type") == "uri_folder":
            path.mkdir(exist_ok=True)
        return path

"""mkdocs hooks: parts of pages generated from the code while the site builds, so they cannot drift.

Markers in the Markdown, each on a line of its own:

- ``<!-- magnus:graph PIPELINE -->``: the diagram ``magnus graph -f PIPELINE`` prints (Mermaid);
- ``<!-- magnus:config NAMESPACE NAME -->``: the table of a plugin's config keys (type, default,
  meaning) from its pydantic model, and the package that provides it;
- ``<!-- magnus:namespaces -->``: every entry-point namespace with the installed plugins of each;
- ``<!-- magnus:run-log PIPELINE PARAMETERS -->``: the run log of a real run of an example.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, get_args

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- magnus:(\S+)(.*?)-->$", re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda match: _expand(match.group(1), match.group(2).split()), markdown)


def _expand(kind: str, arguments: list[str]) -> str:
    if kind == "graph":
        return _graph(*arguments)
    if kind == "config":
        return _config(*arguments)
    if kind == "namespaces":
        return _namespaces()
    if kind == "run-log":
        return _run_log(*arguments)
    raise ValueError(f"unknown docs marker magnus:{kind}")


def _magnus(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run([sys.executable, "-m", "magnus", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"magnus {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def _graph(pipeline: str) -> str:
    """What ``magnus graph -f PIPELINE`` prints, drawn in this process (one page holds many)."""
    import os

    from magnus.diagram import to_mermaid
    from magnus.entrypoints import load_pipeline

    before = os.getcwd()
    os.chdir(ROOT)  # pipelines name their nested dag files from the repository root
    try:
        return f"```mermaid\n{to_mermaid(load_pipeline(pipeline).graph)}```"
    finally:
        os.chdir(before)


def _package_of(namespace: str, name: str) -> str:
    for entry_point in metadata.entry_points(group=namespace):
        if entry_point.name == name and entry_point.dist is not None:
            return entry_point.dist.name
    return "?"


def _type_name(annotation: Any) -> str:
    """The annotation as written in the code, inner types included (``Optional[str]``, ``dict[str, Any]``).

    A plain class shows its name; a generic shows its ``repr`` with every dotted module path cut
    down to the last name (``typing.Optional[magnus_executor_argo.settings.Toleration]`` reads
    ``Optional[Toleration]``).
    """
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", repr(annotation))


def _config(namespace: str, name: str) -> str:
    from magnus.plugins import load_plugin

    plugin = load_plugin(namespace, name)
    package = _package_of(namespace, name)
    lines = [
        f"`{namespace}: {{type: {name}}}` is provided by `{package}` (`pip install {package}`).",
        "",
    ]
    fields = plugin.model_fields
    if not fields:
        return "\n".join([*lines, "It takes no configuration."])
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, field in fields.items():
        if field.is_required():
            default = "required"
        else:
            value = field.get_default(call_default_factory=True)
            default = f"`{json.dumps(value, default=lambda item: item.model_dump())}`"
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | `{_type_name(field.annotation)}` | {default} | {meaning} |")
    return "\n".join(lines)


def _namespaces() -> str:
    from magnus.plugins import FIRST_PARTY_PACKAGES, NAMESPACES

    lines = ["| namespace | plugins (package) |", "| --- | --- |"]
    for namespace in NAMESPACES:
        found = {ep.name: (ep.dist.name if ep.dist else "?") for ep in metadata.entry_points(group=namespace)}
        for (space, name), package in FIRST_PARTY_PACKAGES.items():
            if space == namespace and name not in found:
                found[name] = f"{package}, planned"
        plugins = ", ".join(f"`{name}` ({package})" for name, package in sorted(found.items())) or "none yet"
        lines.append(f"| `{namespace}` | {plugins} |")
    return "\n".join(lines)


def _run_log(pipeline: str, parameters: str) -> str:
    """Run an example for real (in a scratch copy) and show its run log."""
    with tempfile.TemporaryDirectory(prefix="magnus-docs-") as scratch:
        work = Path(scratch)
        shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        config = work / "config.yaml"
        config.write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: do-nothing\n")
        _magnus("execute", "-f", pipeline, "-p", parameters, "-c", str(config), "--run-id", "docs-run", cwd=work)
        run_log = json.loads((work / ".run_log_store" / "docs-run.json").read_text())
    run_log["run_config"] = {key: "..." for key in run_log["run_config"]}
    _scrub_code_identities(run_log["steps"])
    body = "\n".join("    " + line for line in json.dumps(run_log, indent=2).splitlines())
    return f'??? example "The whole run log (click to open)"\n\n    ```json\n{body}\n    ```'


def _scrub_code_identities(steps: dict[str, Any]) -> None:
    """The docs are built from a checkout whose commit says nothing to a reader."""
    for step in steps.values():
        for identity in step["code_identities"]:
            identity.update(code_identifier="(the git commit)", code_identifier_message="")
        for branch in step["branches"].values():
            _scrub_code_identities(branch["steps"])

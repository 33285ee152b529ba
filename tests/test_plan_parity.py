"""Argo renders the execution plan: for every pipeline of examples/, its manifest routes as the plan does.

The plan (``magnus plan``) is what the local walk follows; an engine that takes the whole pipeline
must route the same way. Each DAG task's ``depends`` is read back into edges (``from``, ``success``
| ``failure`` | ``ended``, ``to``) between the plan's units and compared with the plan's own routes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest
import yaml

from magnus.entrypoints import execute, load_pipeline
from magnus.runtime.plan import Plan
from magnus_executor_argo.constants import ENTRYPOINT
from magnus_executor_argo.manifest import task_name
from magnus_executor_argo.names import dns_name

ROOT = Path(__file__).resolve().parents[1]
Edge = Tuple[str, str, str]


def example_pipelines() -> List[str]:
    """Every YAML file under examples/ that holds a pipeline (a ``dag``)."""
    found = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and "dag" in document:
            found.append(str(path.relative_to(ROOT)))
    return found


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the examples; run logs and catalog on the one volume every pod mounts."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    config = {
        "executor": {
            "type": "argo",
            "config": {
                "image": "magnus-examples:test",
                "persistent_volumes": [{"name": "shared", "mount_path": str(tmp_path / "mnt")}],
            },
        },
        "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "mnt" / "logs")}},
        "catalog": {"type": "do-nothing"},
    }
    (tmp_path / "argo.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    yield tmp_path


# A branch joining its fan-in: it ended (Skipped too, for a conditional's branch not chosen).
_CONDITION = re.compile(r"\(([\w-]+)\.Succeeded \|\| \1\.Failed(?: \|\| \1\.Skipped)?\)|([\w-]+)\.(Succeeded|Failed)")


def rendered_edges(manifest: Dict[str, Any], plan: Plan) -> Set[Edge]:
    """The edges the manifest's ``depends`` expressions draw, as unit ids of ``plan``."""
    units_of_template = {}
    for branch, graph in plan.graphs.items():
        template = ENTRYPOINT if not branch else dns_name(branch)
        units_of_template[template] = {task_name(unit): unit.id for unit in plan.of_graph(graph)}
    edges = set()
    for template in manifest["spec"]["templates"]:
        if "dag" not in template or template["name"] not in units_of_template:
            continue  # a loop's iteration template: how Argo repeats a branch, no route of the plan
        units = units_of_template[template["name"]]
        for task in template["dag"]["tasks"]:
            for match in _CONDITION.finditer(task.get("depends", "")):
                ended, source, state = match.groups()
                condition = "ended" if ended else {"Succeeded": "success", "Failed": "failure"}[state]
                edges.add((units[ended or source], condition, units[task["name"]]))
    return edges


@pytest.mark.parametrize("pipeline", example_pipelines())
def test_argo_routes_every_example_as_the_plan_does(project: Path, pipeline: str) -> None:
    plan = load_pipeline(pipeline).plan
    assert execute(pipeline, "argo.yaml") is None  # handed to the engine
    manifest = yaml.safe_load((project / "argo-pipeline.yaml").read_text())
    assert rendered_edges(manifest, plan) == set(plan.routes())


def test_every_kind_of_unit_is_among_the_examples() -> None:
    """The parity above covers steps, ends, fan-outs (parallel, map, dag), branches and fan-ins."""
    kinds = {unit.kind for pipeline in example_pipelines() for unit in load_pipeline(pipeline).plan.units.values()}
    assert kinds == {"step", "end", "fan-out", "branch", "fan-in"}
    dynamic = [
        unit for pipeline in example_pipelines() for unit in load_pipeline(pipeline).plan.units.values() if unit.dynamic
    ]
    assert dynamic, "a map's branch, run once per item"

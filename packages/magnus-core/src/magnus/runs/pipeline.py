"""The pipeline a run recorded, each of its nodes with the status the run gave it, drawn as SVG.

The run log keeps the pipeline's ``dag`` in ``run_config`` (as magnus 0.5.1 did) and the file it
came from; nested ``dag_definition`` files are read again from where the run found them. A node
inside a map stands for all its iterations: it is FAIL when one failed, PROCESSING while one
runs, SUCCESS when all succeeded. A fail node the run reached is FAIL (its step log says SUCCESS:
the node did its job, which is to end its branch as failed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

from magnus import defaults
from magnus.datastore.models import RunLog, StepLog
from magnus.diagram import to_dot
from magnus.errors import MagnusError
from magnus.graph import Graph
from magnus.nodes.base import BaseNode
from magnus.nodes.composite import CompositeNode
from magnus.parsing import parse_pipeline


def recorded_graph(run_log: RunLog) -> Graph:
    """The run's pipeline, parsed from its run config.

    Raises:
        MagnusError: the run log holds no pipeline (a run of magnus 0.5.1 may not), or it no longer
            parses (a nested dag file moved, or is outside the working folder: not read).
    """
    dag = run_log.run_config.get("dag")
    if not isinstance(dag, dict) or not dag:
        raise MagnusError("the run log does not record its pipeline (run_config.dag)")
    pipeline_file = str(run_log.run_config.get("pipeline_file") or "")
    base_dir = Path(pipeline_file).parent if pipeline_file else Path.cwd()
    # the run log says where the files are: only those in the working folder are read
    return parse_pipeline(
        {"dag": dag}, source=pipeline_file or "run_config.dag", base_dir=base_dir, confined_to=Path.cwd().resolve()
    )


def node_statuses(graph: Graph, run_log: RunLog) -> Dict[str, str]:
    """The status of every node the run reached, by the node's internal name (map items merged)."""
    statuses: Dict[str, str] = {}
    for name, (node, logs) in _matched(graph, run_log).items():
        if node.is_terminal and node.ends_with == defaults.FAIL:  # reached: its branch failed there
            statuses[name] = defaults.FAIL
        else:
            statuses[name] = _merged([step.status for step in logs])
    return statuses


def node_notes(graph: Graph, run_log: RunLog) -> Dict[str, str]:
    """What the run made of each conditional (the branches taken) and loop (its iterations), by internal name."""
    notes: Dict[str, str] = {}
    for name, (node, logs) in _matched(graph, run_log).items():
        if isinstance(node, CompositeNode) and node.iterates:
            counts = sorted({len(step.branches) for step in logs})
            shown = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
            notes[name] = f"{shown} iteration{'' if counts == [1] else 's'}"
        elif isinstance(node, CompositeNode) and node.chooses_branch:
            taken = sorted({branch.rsplit(".", 1)[-1] for step in logs for branch in step.branches})
            notes[name] = f"took {', '.join(taken)}" if taken else "took no branch"
    return notes


def _matched(graph: Graph, run_log: RunLog) -> Dict[str, Tuple[BaseNode, List[StepLog]]]:
    """Every node the run reached with its step logs (one per map item, loop iteration...), by internal name."""
    found: Dict[str, Tuple[BaseNode, List[StepLog]]] = {}
    _collect(graph, [run_log.steps], found)
    return found


def _collect(
    graph: Graph, containers: Sequence[Mapping[str, StepLog]], found: Dict[str, Tuple[BaseNode, List[StepLog]]]
) -> None:
    """Match the nodes of ``graph`` with the steps of each branch log that ran it (``containers``)."""
    for node in graph.steps.values():
        logs = [step for steps in containers for step in steps.values() if step.name == node.name]
        if not logs:
            continue
        found.setdefault(node.internal_name, (node, []))[1].extend(logs)
        if not isinstance(node, CompositeNode):
            continue
        for branch in node.get_branches():
            label = branch.internal_branch_name[len(node.internal_name) + 1 :]
            inner = [
                branch_log.steps
                for step in logs
                for name, branch_log in step.branches.items()
                if node.dynamic_branches or name[len(step.internal_name) + 1 :] == label
            ]
            _collect(branch, inner, found)


def _merged(found: List[str]) -> str:
    if defaults.FAIL in found:
        return defaults.FAIL
    if all(status == defaults.SUCCESS for status in found):
        return defaults.SUCCESS
    return defaults.PROCESSING


def status_svg(run_log: RunLog) -> str:
    """The run's pipeline coloured by status, as an SVG document (Graphviz ``dot``).

    Raises:
        MagnusError: no pipeline recorded, or Graphviz's ``dot`` is missing or failed.
    """
    graph = recorded_graph(run_log)
    return dot_svg(to_dot(graph, node_statuses(graph, run_log), node_notes(graph, run_log)))


def dot_svg(source: str) -> str:
    """A Graphviz graph as an SVG document.

    Raises:
        MagnusError: Graphviz's ``dot`` is missing or failed.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise MagnusError("Graphviz's 'dot' is not installed (apt-get install graphviz)")
    rendered = subprocess.run(
        [dot, "-Tsvg"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if rendered.returncode != 0:
        raise MagnusError(f"dot failed: {rendered.stderr.strip()}")
    return rendered.stdout

"""A pipeline as a picture: Mermaid flowcharts and Graphviz dot, from the parsed graph.

Parallel branches, map bodies and nested dags are drawn as sub-graphs inside the step that holds
them; ``on_failure`` edges are dashed and labelled, ``next`` edges solid; success and fail nodes
have shapes and colours of their own, stubs a dashed outline. The implicit route of a failing step
to its dag's fail node is not drawn (every step has it).

Given the status of each node of a run (``statuses``, by internal name), the dot graph is coloured
by it instead (:data:`STATUS_COLOURS`; grey for nodes the run never reached), and each node carries
``id="step:<internal name>"`` and ``class="step status-<STATUS>"``, kept by Graphviz in its SVG.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterator, List, Mapping, Optional

from magnus import defaults
from magnus.graph import Graph
from magnus.nodes.base import BaseNode, ExecutableNode
from magnus.nodes.composite import CompositeNode
from magnus.nodes.conditional import ConditionalNode
from magnus.nodes.loop import LoopNode
from magnus.nodes.map import MapNode
from magnus.nodes.parallel import ParallelNode

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
# Fill of a step by the status it ended with in a run; NOT_RUN for steps the run never reached.
NOT_RUN = "NOT_RUN"
STATUS_COLOURS = {
    defaults.SUCCESS: "#7bd389",
    defaults.FAIL: "#f28b82",
    defaults.PROCESSING: "#fdd663",
    defaults.CREATED: "#fdd663",
    NOT_RUN: "#dadce0",
}


def _id(node_or_branch: str) -> str:
    """A stable identifier both Mermaid and dot accept, unique per internal name."""
    return f"{_UNSAFE.sub('_', node_or_branch)[:40]}_{hashlib.sha1(node_or_branch.encode()).hexdigest()[:6]}"


def _label(text: str) -> str:
    return text.replace('"', "'")


def _caption(node: BaseNode, note: str = "") -> str:
    """What a composite's box says: its name and what it does (``note``: what a run made of it)."""
    if isinstance(node, MapNode):
        caption = f"{node.name} (map over {node.iterate_on} as {node.iterate_as})"
    elif isinstance(node, ConditionalNode):
        caption = f"{node.name} (conditional on {node.parameter})"
    elif isinstance(node, LoopNode):
        caption = f"{node.name} (loop until {node.break_on}, at most {node.max_iterations})"
    else:
        caption = f"{node.name} ({node.node_type})"
    return f"{caption}: {note}" if note else caption


def _branch_graphs(node: CompositeNode) -> List[tuple[str, Graph]]:
    """Branches with the label drawn around them: named branches are labelled, a lone body is not."""
    branches = node.labelled_branches()
    if len(branches) > 1 or isinstance(node, ParallelNode) or node.chooses_branch:
        return branches
    return [("", graph) for _, graph in branches]


def _kind(node: BaseNode) -> str:
    """How a leaf node is drawn: ``success``, ``fail``, ``stub`` (nothing to run) or ``task``."""
    if node.is_terminal:
        return "success" if node.ends_with == defaults.SUCCESS else "fail"
    if isinstance(node, ExecutableNode) and node.task() is None:
        return "stub"
    return "task"


# ---- Mermaid -------------------------------------------------------------------------------------
def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart TD"]
    lines.extend(_mermaid_graph(graph, "    "))
    lines += [
        "    classDef success fill:#d1f2d9,stroke:#1e7e34,color:#0b3d17",
        "    classDef fail fill:#f8d7da,stroke:#b02a37,color:#58151c",
        "    classDef stub stroke-dasharray: 5 5",
    ]
    return "\n".join(lines) + "\n"


def _mermaid_graph(graph: Graph, indent: str) -> Iterator[str]:
    for node in graph.steps.values():
        node_id = _id(node.internal_name)
        if isinstance(node, CompositeNode):
            yield f'{indent}subgraph {node_id}["{_label(_caption(node))}"]'
            yield f"{indent}    direction TB"
            for label, branch in _branch_graphs(node):
                if label:
                    yield f'{indent}    subgraph {_id(branch.internal_branch_name)}["{_label(label)}"]'
                    yield from _mermaid_graph(branch, indent + "        ")
                    yield f"{indent}    end"
                else:
                    yield from _mermaid_graph(branch, indent + "    ")
            yield f"{indent}end"
        elif _kind(node) in ("success", "fail"):
            yield f'{indent}{node_id}(["{_label(node.name)}"]):::{_kind(node)}'
        elif _kind(node) == "stub":
            yield f'{indent}{node_id}["{_label(node.name)}"]:::stub'
        else:
            yield f'{indent}{node_id}["{_label(node.name)}"]'
    for node in graph.steps.values():
        for field, target in node.routes().items():
            source, destination = _id(node.internal_name), _id(graph.steps[target].internal_name)
            if field == "next":
                yield f"{indent}{source} --> {destination}"
            else:
                yield f"{indent}{source} -. on failure .-> {destination}"


# ---- Graphviz dot --------------------------------------------------------------------------------
def to_dot(
    graph: Graph, statuses: Optional[Mapping[str, str]] = None, notes: Optional[Mapping[str, str]] = None
) -> str:
    """The graph in dot; with ``statuses`` (a run's, by internal name) coloured by them, and with
    ``notes`` (by internal name) added to the captions of composites (a loop's iterations)."""
    lines = [
        "digraph pipeline {",
        "    compound=true;",
        '    node [shape=box, style="rounded", fontname="Helvetica"];',
        '    edge [fontname="Helvetica"];',
    ]
    lines.extend(_dot_graph(graph, "    ", statuses, notes or {}))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _anchor(node: BaseNode) -> str:
    """The node edges attach to: the node itself, or the invisible point inside a composite's cluster."""
    return _id(node.internal_name) + ("_anchor" if node.is_composite else "")


def _status_attributes(node: BaseNode, statuses: Mapping[str, str], colour_attribute: str) -> List[str]:
    """Attributes naming a node and its status in the SVG, and colouring it by the status."""
    status = statuses.get(node.internal_name, NOT_RUN)
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS[NOT_RUN])
    identity = f'id="step:{_label(node.internal_name)}"'
    return [identity, f'class="step status-{status}"', f'{colour_attribute}="{colour}"']


def _dot_graph(
    graph: Graph, indent: str, statuses: Optional[Mapping[str, str]] = None, notes: Mapping[str, str] = {}
) -> Iterator[str]:
    for node in graph.steps.values():
        node_id = _id(node.internal_name)
        if isinstance(node, CompositeNode):
            yield f"{indent}subgraph cluster_{node_id} {{"
            yield f'{indent}    label="{_label(_caption(node, notes.get(node.internal_name, "")))}"; style="rounded";'
            if statuses is not None:
                yield f"{indent}    {'; '.join(_status_attributes(node, statuses, 'color'))}; penwidth=3;"
            yield f"{indent}    {node_id}_anchor [shape=point, style=invis];"
            for label, branch in _branch_graphs(node):
                if label:
                    yield f"{indent}    subgraph cluster_{_id(branch.internal_branch_name)} {{"
                    yield f'{indent}        label="{_label(label)}"; style="dashed";'
                    if statuses is not None:  # a cluster inherits its parent's attributes: reset them
                        branch_id = _label(branch.internal_branch_name)
                        yield f'{indent}        id="branch:{branch_id}"; class="branch"; color="black"; penwidth=1;'
                    yield from _dot_graph(branch, indent + "        ", statuses, notes)
                    yield f"{indent}    }}"
                else:
                    yield from _dot_graph(branch, indent + "    ", statuses, notes)
            yield f"{indent}}}"
        elif statuses is not None:
            shape = "oval" if _kind(node) in ("success", "fail") else "box"
            style = "rounded,filled,dashed" if _kind(node) == "stub" else "rounded,filled"
            styled = ", ".join(_status_attributes(node, statuses, "fillcolor"))
            yield f'{indent}{node_id} [label="{_label(node.name)}", shape={shape}, style="{style}", {styled}];'
        elif _kind(node) == "success":
            yield f'{indent}{node_id} [label="{_label(node.name)}", shape=oval, style=filled, fillcolor="#d1f2d9"];'
        elif _kind(node) == "fail":
            yield f'{indent}{node_id} [label="{_label(node.name)}", shape=oval, style=filled, fillcolor="#f8d7da"];'
        elif _kind(node) == "stub":
            yield f'{indent}{node_id} [label="{_label(node.name)}", style="rounded,dashed"];'
        else:
            yield f'{indent}{node_id} [label="{_label(node.name)}"];'
    for node in graph.steps.values():
        for field, target in node.routes().items():
            destination_node = graph.steps[target]
            attributes = []
            if node.is_composite:
                attributes.append(f"ltail=cluster_{_id(node.internal_name)}")
            if destination_node.is_composite:
                attributes.append(f"lhead=cluster_{_id(destination_node.internal_name)}")
            if field != "next":
                attributes += ["style=dashed", 'label="on failure"']
            suffix = f" [{', '.join(attributes)}]" if attributes else ""
            yield f"{indent}{_anchor(node)} -> {_anchor(destination_node)}{suffix};"


FORMATS = {"mermaid": to_mermaid, "dot": to_dot}

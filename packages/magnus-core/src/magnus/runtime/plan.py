"""The execution plan: a pipeline compiled into units, each with where it leads.

A pipeline is a graph of nodes; running it is a sequence of smaller things, the *units*:

- ``step``: run an executable node (a task, a stub) in one place;
- ``fan-out``: record a composite node (parallel, map, dag) and the branches it runs;
- ``branch``: walk one branch of a composite (a map's branch once per item, known at run time);
- ``fan-in``: settle the composite from how its branches ended;
- ``end``: a terminal node (success, fail) ends its branch, or the run, with its status.

Each unit says which units follow it when it succeeds and when it fails: a step or a fan-in goes
to its node's ``next``, or to its ``on_failure`` (else the fail node of its dag); a fan-out to its
branches (or, failing, as its node fails); a branch joins its composite's fan-in. The plan is a
value, computed once from the graph: ``magnus plan`` prints it, the orchestrator walks it (see
:mod:`magnus.runtime.orchestrator`), engines that take a whole pipeline (Argo) render it. Behaviour
comes from the nodes' class flags (``is_executable``, ``is_composite``, ``is_terminal``,
``dynamic_branches``), never from their type names, so a third-party node type is planned as a
built-in one is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Tuple

from magnus import defaults
from magnus.nodes.composite import CompositeNode

if TYPE_CHECKING:
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode

STEP = "step"
FAN_OUT = "fan-out"
BRANCH = "branch"
FAN_IN = "fan-in"
END = "end"
# What a unit reports when it ends, and so which of its routes is taken.
SUCCEEDED = "success"
FAILED = "failure"


@dataclass(frozen=True, eq=False)
class PlannedUnit:
    """One unit of the plan (placeholders where map values go).

    ``id`` is unique in the plan: the node's internal name for ``step`` and ``end``, with
    ``:fan-out``/``:fan-in`` for a composite's, the branch's internal name for ``branch``.
    ``graph`` is the dag holding ``node``; for a ``branch``, ``node`` is its composite and
    ``branch_graph`` the dag it walks. ``on_success`` and ``on_failure`` name the units that
    follow (none: the unit ends its branch, as an ``end`` does, or joins its fan-in, as a
    ``branch`` does). ``dynamic``: a ``branch`` run once per item of a map, the items known only
    when its fan-out ran.
    """

    id: str
    kind: str
    node: "BaseNode"
    graph: "Graph"
    on_success: Tuple[str, ...] = ()
    on_failure: Tuple[str, ...] = ()
    label: str = ""
    branch_graph: "Graph | None" = None
    dynamic: bool = False
    fan_in: str = ""

    @property
    def shown(self) -> str:
        """The id as people read it: ``*`` where a map's value goes."""
        return self.id.replace(defaults.MAP_PLACEHOLDER, "*")

    def describe(self) -> Dict[str, Any]:
        """The unit as data (``magnus plan --format json``)."""
        described: Dict[str, Any] = {"id": self.shown, "kind": self.kind, "node": self.node.internal_name}
        if self.kind == BRANCH:
            described["branch"] = self.label
            described["per_item"] = self.dynamic
            if isinstance(self.node, CompositeNode) and self.node.decides:
                described["walked"] = "per iteration" if self.node.iterates else "when chosen"
            described["joins"] = _shown(self.fan_in)
        else:
            described["on_success"] = [_shown(unit) for unit in self.on_success]
            described["on_failure"] = [_shown(unit) for unit in self.on_failure]
        if self.kind == END:
            described["ends_with"] = self.node.ends_with
        return described


@dataclass(frozen=True)
class Plan:
    """Every unit of a pipeline, all depths, and where each dag starts.

    ``entries`` maps each dag (by its internal branch name, '' for the pipeline) to the id of
    its first unit.
    """

    units: Mapping[str, PlannedUnit]
    entries: Mapping[str, str]
    graphs: Mapping[str, "Graph"] = field(default_factory=dict)

    @property
    def start(self) -> PlannedUnit:
        """The pipeline's first unit."""
        return self.units[self.entries[""]]

    def entry(self, graph: "Graph") -> PlannedUnit:
        """The first unit of ``graph`` (the pipeline or a branch)."""
        return self.units[self.entries[graph.internal_branch_name]]

    def unit(self, unit_id: str) -> PlannedUnit:
        return self.units[unit_id]

    def of_graph(self, graph: "Graph") -> List[PlannedUnit]:
        """The units of one dag (not of the branches nested in it), in the order of its steps."""
        return [unit for unit in self.units.values() if unit.graph is graph]

    def routes(self) -> Iterator[Tuple[str, str, str]]:
        """Every edge of the plan as ``(from, condition, to)``; ``condition`` is ``success``, ``failure``
        or, for a branch joining its fan-in, ``ended``."""
        for unit in self.units.values():
            if unit.kind == BRANCH:
                yield unit.id, "ended", unit.fan_in
                continue
            for target in unit.on_success:
                yield unit.id, SUCCEEDED, target
            for target in unit.on_failure:
                yield unit.id, FAILED, target

    def describe(self) -> List[Dict[str, Any]]:
        return [unit.describe() for unit in self.units.values()]

    def to_json(self) -> str:
        return json.dumps({"start": self.start.shown, "units": self.describe()}, indent=2)

    def to_text(self) -> str:
        """One line per unit, in the order a walk meets them, a branch's units indented under it."""
        ordered = list(self._walk_order(self.graphs[""], 0))
        width = max(2 * depth + len(unit.shown) for unit, depth in ordered)
        lines = []
        for unit, depth in ordered:
            if unit.kind == BRANCH:
                leads = f"walks branch '{unit.label}'{_how_often(unit)}, then {_shown(unit.fan_in)}"
            elif unit.kind == END:
                leads = f"ends its {'branch' if unit.graph.internal_branch_name else 'run'} {unit.node.ends_with}"
            else:
                leads = f"success -> {_listed(unit.on_success)}, failure -> {_listed(unit.on_failure)}"
            lines.append(f"{'  ' * depth}{unit.shown:<{width - 2 * depth}}  {unit.kind:<8} {leads}")
        return "\n".join(lines) + "\n"

    def _walk_order(self, graph: "Graph", depth: int) -> Iterator[Tuple[PlannedUnit, int]]:
        """The units of ``graph`` from its entry along their routes (those no route reaches last), each
        composite's branches and their units right after its fan-out."""
        units = self.of_graph(graph)
        ids = {unit.id for unit in units}
        queue, seen = [self.entry(graph).id], set()
        for unit in units:  # then those nothing routes to, in the order of the dag
            queue.append(unit.id)
        while queue:
            unit = self.units[queue.pop(0)]
            if unit.id in seen:
                continue
            seen.add(unit.id)
            if unit.kind == BRANCH:
                continue
            yield unit, depth
            following = list(unit.on_success + unit.on_failure)
            if unit.kind == FAN_OUT:
                for branch in unit.on_success:
                    yield self.units[branch], depth + 1
                    yield from self._walk_order(self.graphs[branch], depth + 2)
                following = [unit.id.replace(FAN_OUT, FAN_IN), *unit.on_failure]
            queue[:0] = [target for target in following if target in ids and target not in seen]


def _how_often(branch: PlannedUnit) -> str:
    """How often a branch is walked, as ``magnus plan`` says it."""
    node = branch.node
    assert isinstance(node, CompositeNode)
    if node.iterates:
        return " once per iteration"
    if node.chooses_branch:
        return " when chosen"
    return " once per item" if branch.dynamic else ""


def _shown(unit_id: str) -> str:
    return unit_id.replace(defaults.MAP_PLACEHOLDER, "*")


def _listed(unit_ids: Tuple[str, ...]) -> str:
    return ", ".join(_shown(unit) for unit in unit_ids) or "-"


def fan_out_id(node: "BaseNode") -> str:
    return f"{node.internal_name}:{FAN_OUT}"


def fan_in_id(node: "BaseNode") -> str:
    return f"{node.internal_name}:{FAN_IN}"


def entry_id(node: "BaseNode") -> str:
    """The first unit of a node: its step, its fan-out, or its end."""
    return fan_out_id(node) if node.is_composite else node.internal_name


def compile_plan(graph: "Graph") -> Plan:
    """The plan of the pipeline ``graph``, its nested dags included."""
    units: Dict[str, PlannedUnit] = {}
    entries: Dict[str, str] = {}
    graphs: Dict[str, "Graph"] = {}
    _plan_graph(graph, units, entries, graphs)
    return Plan(units, entries, graphs)


def _plan_graph(
    graph: "Graph", units: Dict[str, PlannedUnit], entries: Dict[str, str], graphs: Dict[str, "Graph"]
) -> None:
    entries[graph.internal_branch_name] = entry_id(graph.get_node_by_name(graph.start_at))
    graphs[graph.internal_branch_name] = graph
    for node in graph.steps.values():
        if node.is_terminal:
            units[node.internal_name] = PlannedUnit(node.internal_name, END, node, graph)
            continue
        success = (entry_id(graph.get_node_by_name(node.get_next_node())),)
        failure = (entry_id(graph.get_node_by_name(node.get_on_failure_node() or graph.get_fail_node().name)),)
        if not node.is_composite:
            units[node.internal_name] = PlannedUnit(node.internal_name, STEP, node, graph, success, failure)
            continue
        assert isinstance(node, CompositeNode), "a composite node's class derives from CompositeNode"
        branches, dynamic = node.labelled_branches(), node.dynamic_branches
        branch_ids = tuple(branch.internal_branch_name for _, branch in branches)
        units[fan_out_id(node)] = PlannedUnit(fan_out_id(node), FAN_OUT, node, graph, branch_ids, failure)
        for label, branch in branches:
            units[branch.internal_branch_name] = PlannedUnit(
                branch.internal_branch_name,
                BRANCH,
                node,
                graph,
                label=label,
                branch_graph=branch,
                dynamic=dynamic,
                fan_in=fan_in_id(node),
            )
            _plan_graph(branch, units, entries, graphs)
        units[fan_in_id(node)] = PlannedUnit(fan_in_id(node), FAN_IN, node, graph, success, failure)

"""Parsing a pipeline's ``dag:`` block into a :class:`~magnus.graph.Graph`, checked before anything runs.

Parsing collects every problem it finds (unknown ``next``, unreachable steps, cycles, missing
fields, unknown node or task types, ...) and raises them together as one
:class:`~magnus.errors.PipelineDefinitionError`, each naming the file and the location
(``pipeline.yaml: dag.steps.train.next: ...``).

Composite steps (``dag`` files including each other, ``parallel``, ``map``) nest at most
:data:`NESTING_LIMIT` levels: a YAML file's own nesting is bounded, but a chain of
``dag_definition`` files is not, and each level nests the run log four JSON levels deeper (a run
log of 50 levels no longer read back through pydantic's JSON parser).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from pydantic import ValidationError

from magnus import defaults
from magnus.errors import MagnusError, PipelineDefinitionError
from magnus.graph import Graph
from magnus.names import did_you_mean, path_name_problem
from magnus.nodes.base import internal_name_in
from magnus.parse_context import ParseContext, ProblemsRecorded
from magnus.plugins import load_plugin
from magnus.validation import describe_validation_error

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode

# How many composite steps may hold one another, whatever their kind and file.
NESTING_LIMIT = 25


def nesting_depth(internal_branch_name: str) -> int:
    """How many composite steps hold a step of the branch ``internal_branch_name`` (0 at the top).

    At parse time a branch's name is ``step.branch`` per level: step and branch names hold no dots,
    and a map's branch is named by its placeholder.
    """
    return (internal_branch_name.count(".") + 1) // 2 if internal_branch_name else 0


def create_graph(dag: Any, ctx: ParseContext, internal_branch_name: str = "") -> Graph:
    """Parse one ``dag`` mapping (the pipeline's or a branch's) and check its shape.

    Problems go into ``ctx.problems``; the caller raises them (see :func:`parse_pipeline`).
    """
    if not isinstance(dag, dict):
        ctx.problem(f"must be a mapping with start_at and steps, got {type(dag).__name__}")
        return Graph(start_at="", steps={}, internal_branch_name=internal_branch_name)

    for key in dag:
        if key not in ("start_at", "steps", "description", "name", "max_time"):
            ctx.problem("unknown field (allowed: description, start_at, steps)", key)

    steps_config = dag.get("steps")
    steps: Dict[str, BaseNode] = {}
    if not isinstance(steps_config, dict) or not steps_config:
        ctx.problem("required: a mapping of step names to steps", "steps")
        steps_config = {}
    # A step named `1:` in YAML is the integer 1: step names are text, as `next: 1` is.
    named = {str(name): config for name, config in steps_config.items()}
    for name in steps_config:
        if not isinstance(name, str) and str(name) in steps_config:
            ctx.problem(f"step '{name}' is named twice (as text and as a number)", "steps")
    steps_config = with_default_wiring(named)

    for name, config in steps_config.items():
        node = parse_node(str(name), config, ctx.at("steps", name), internal_branch_name)
        if node is not None:
            steps[str(name)] = node

    start_at = dag.get("start_at")
    graph = Graph(
        start_at="" if start_at is None else str(start_at),
        steps=steps,
        name=str(dag.get("name") or ""),
        description=str(dag.get("description") or ""),
        internal_branch_name=internal_branch_name,
    )
    start_known = start_at not in (None, "") and str(start_at) in steps_config
    if start_at in (None, ""):
        ctx.problem("required field is missing", "start_at")
    elif not start_known:
        names = [str(name) for name in steps_config]
        meant = did_you_mean(str(start_at), names)
        ctx.problem(f"'{start_at}' is not a step (known: {', '.join(names)}){meant}", "start_at")
    complete = start_known and len(steps) == len(steps_config)
    _check_routing(graph, ctx, [str(name) for name in steps_config], complete=complete)
    return graph


_TERMINAL_TYPES = ("success", "fail")


def with_default_wiring(steps: Dict[str, Any]) -> Dict[str, Any]:
    """``steps`` with the wiring a dag may leave out: a ``success`` and a ``fail`` step when it has
    none (and no other step has that name), and ``next`` to the success step for the last step
    that routes (not a success or fail step) when it has no ``next``.

    A dag that wires itself (every magnus 0.5.1 pipeline) is returned as it is; ``steps`` itself
    is never changed.
    """
    types = {name: config.get("type") if isinstance(config, dict) else None for name, config in steps.items()}
    completed = dict(steps)
    for terminal in _TERMINAL_TYPES:
        if terminal not in types.values() and terminal not in completed:
            completed[terminal] = {"type": terminal}
    success = next(
        (name for name, config in completed.items() if isinstance(config, dict) and config.get("type") == "success"),
        None,
    )
    routing = [name for name, kind in types.items() if kind is not None and kind not in _TERMINAL_TYPES]
    if success is not None and routing and "next" not in steps[routing[-1]]:
        completed[routing[-1]] = {**steps[routing[-1]], "next": success}
    return completed


def _check_routing(graph: Graph, ctx: ParseContext, names: List[str], complete: bool) -> None:
    """Every ``next``/``on_failure`` leads somewhere, all steps are reachable, and there are no cycles.

    When some steps could not be parsed (``complete`` is False) only the routes of the others are
    checked: the whole-graph checks would report noise about the broken steps.
    """
    known = ", ".join(names)
    healthy = complete
    for name, node in graph.steps.items():
        for field_name, target in node.routes().items():
            if not target:
                ctx.problem("required field is missing", "steps", name, field_name)
                healthy = False
            elif target not in names:
                meant = did_you_mean(str(target), names)
                ctx.problem(f"'{target}' is not a step (known: {known}){meant}", "steps", name, field_name)
                healthy = False
    if not complete:
        return
    for ends_with, type_name in ((defaults.SUCCESS, "success"), (defaults.FAIL, "fail")):
        count = sum(1 for node in graph.steps.values() if node.is_terminal and node.ends_with == ends_with)
        if count != 1:
            ctx.problem(f"a dag needs exactly one step of type {type_name}, found {count}", "steps")
            healthy = False
    if not healthy:
        return

    # The fail node is where any failing step without on_failure goes: always reachable.
    reached = {graph.start_at, graph.get_fail_node().name}
    frontier = [graph.start_at]
    while frontier:
        for target in graph.steps[frontier.pop()].routes().values():
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    for name in graph.steps:
        if name not in reached:
            ctx.problem(f"step '{name}' is unreachable from start_at '{graph.start_at}'", "steps", name)

    cycle = _find_cycle(graph)
    if cycle:
        ctx.problem(f"the steps form a cycle: {' -> '.join(cycle)}", "steps")


def _find_cycle(graph: Graph) -> Optional[List[str]]:
    """A cycle along next/on_failure edges, as the step names around it, or None (iterative DFS)."""
    done: set[str] = set()
    for root in graph.steps:
        if root in done:
            continue
        path: List[str] = [root]
        on_path = {root}
        pending = [iter(graph.steps[root].routes().values())]
        while pending:
            target = next(pending[-1], None)
            if target is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif target in on_path:
                return [*path[path.index(target) :], target]
            elif target not in done:
                path.append(target)
                on_path.add(target)
                pending.append(iter(graph.steps[target].routes().values()))
    return None


def parse_pipeline(pipeline: Any, *, source: str, base_dir: Path, confined_to: Optional[Path] = None) -> Graph:
    """Parse a whole pipeline document (``{dag: {...}}``) and raise every problem found at once.

    ``confined_to``: the folder the ``dag_definition`` files it includes must be in (a pipeline
    read back from a run log); anywhere when None (a pipeline the user gave).
    """
    ctx = ParseContext(source=source, location="dag", base_dir=base_dir, confined_to=confined_to)
    if not isinstance(pipeline, dict) or "dag" not in pipeline:
        raise PipelineDefinitionError([f"{source}: no 'dag' block: a pipeline file holds 'dag: {{start_at, steps}}'"])
    graph = create_graph(pipeline["dag"], ctx)
    if ctx.problems:
        raise PipelineDefinitionError(ctx.problems)
    return graph


def parse_node(name: str, config: Any, ctx: ParseContext, internal_branch_name: str) -> Optional["BaseNode"]:
    """Parse one step; record problems in ``ctx`` and return None when it cannot be built."""
    if "." in name or defaults.COMMAND_FRIENDLY_CHARACTER in name:
        ctx.problem("step names cannot contain '.' or '%' (they separate parts of internal names)")
        return None
    unsafe = path_name_problem(name)
    if unsafe:
        ctx.problem(f"step name {name!r} {unsafe}")
        return None
    if not isinstance(config, dict):
        ctx.problem(f"a step must be a mapping with a type, got {type(config).__name__}")
        return None
    node_type = config.get("type")
    if not node_type:
        ctx.problem("required field is missing", "type")
        return None
    try:
        node_class = load_plugin("nodes", str(node_type))
    except MagnusError as exc:
        ctx.problem(str(exc), "type")
        return None
    if node_class.is_composite and nesting_depth(internal_branch_name) >= NESTING_LIMIT:
        ctx.problem(
            f"nested too deep: composite steps (dag, parallel, map) hold one another at most {NESTING_LIMIT} "
            f"levels deep, and step '{name}' would be level {nesting_depth(internal_branch_name) + 1}"
        )
        return None

    body = {key: value for key, value in config.items() if key != "type"}
    internal_name = internal_name_in(internal_branch_name, name)
    identity = {"name": name, "internal_name": internal_name, "internal_branch_name": internal_branch_name}
    try:
        node: BaseNode = node_class.parse_from_config(body, ctx, **identity)
        return node
    except ValidationError as exc:
        known = [f.alias or key for key, f in node_class.model_fields.items() if key not in identity]
        ctx.problems.extend(
            describe_validation_error(exc, source=ctx.source, location=ctx.location, known_fields=known)
        )
    except MagnusError as exc:
        ctx.problem(str(exc))
    except ProblemsRecorded:
        pass
    return None

"""The promises of :class:`~magnus.nodes.base.BaseNode`, as tests.

The runtime treats every node type alike, from its class flags: a node type of your own works
wherever a built-in one does as long as these hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Dict, Type

import pytest
from pydantic import ValidationError

from magnus import defaults
from magnus.errors import MagnusError
from magnus.nodes.base import BaseNode, CatalogSettings, ExecutableNode, TraversalNode, internal_name_in
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.parse_context import ParseContext, ProblemsRecorded
from magnus.tasks.base import BaseTaskType
from magnus.testing._entry_points import check_registered_as

STEP = "step"
# Where the node is parsed to check map positions: in the branch of a map, inside a map's branch.
NESTED_BRANCH = f"outer.{defaults.MAP_PLACEHOLDER}.inner.{defaults.MAP_PLACEHOLDER}"
MAP_POSITION = {"outer_item": "a", "inner_item": 2}
UNKNOWN_FIELD = "surely_not_a_field"


def parse(
    node_class: Type[BaseNode], config: Dict[str, Any], base_dir: Path, internal_branch_name: str = ""
) -> BaseNode:
    """The node as the pipeline parser builds it, as step ``step`` of the branch given.

    Raises:
        AssertionError: the parser recorded problems (with them).
    """
    ctx = ParseContext(source="contract.yaml", location=f"dag.steps.{STEP}", base_dir=base_dir)
    internal_name = internal_name_in(internal_branch_name, STEP)
    try:
        node = node_class.parse_from_config(
            dict(config), ctx, name=STEP, internal_name=internal_name, internal_branch_name=internal_branch_name
        )
    except ProblemsRecorded:
        raise AssertionError(f"{node_class.__name__} refused its config: {ctx.problems}") from None
    assert not ctx.problems, ctx.problems
    return node


class NodeContract:
    """Subclass and provide ``node_class`` and ``config``: a minimal config of a step of that type.

    ``config`` is the step's mapping in a pipeline without ``type``, routing included
    (``{"command": "module.function", "next": "success"}``); files it names go in ``tmp_path``
    (relative names are looked up there). For a composite whose branches come from the run's
    parameters (``reads_parameters``, like map), provide ``parameters`` too.

    What is promised:

    - it parses from that config, at the top of a pipeline and nested in maps;
    - its flags are coherent: at most one of ``is_executable``, ``is_composite``, ``is_terminal``;
      executable nodes are :class:`ExecutableNode` (``catalog``, ``max_attempts``), composite ones
      :class:`CompositeNode`, terminal ones end with SUCCESS or FAIL;
    - ``routes()`` names only steps, by the fields that name them; terminal nodes route nowhere;
    - step and branch log names resolve the map placeholders;
    - a composite's branch runs are named under its step, each for one of its graphs, carrying
      the map position, and its labelled branches are its branches;
    - unknown fields are refused (``ignores_unknown_fields = True`` for types that accept and
      ignore them, as ``stub``);
    - ``node_type`` is its entry-point name in the ``nodes`` namespace, once installed.
    """

    ignores_unknown_fields: ClassVar[bool] = False

    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        raise NotImplementedError("provide a node_class fixture")

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        raise NotImplementedError("provide a config fixture: a minimal step of the type, without 'type'")

    @pytest.fixture
    def parameters(self) -> Dict[str, Any]:
        """The run's parameters, from which a composite that ``reads_parameters`` works out its branches."""
        return {}

    @pytest.fixture
    def node(self, node_class: Type[BaseNode], config: Dict[str, Any], tmp_path: Path) -> BaseNode:
        return parse(node_class, config, tmp_path)

    # ---- parsing and flags ---------------------------------------------------------------------
    def test_parses_from_its_config(self, node_class: Type[BaseNode], node: BaseNode) -> None:
        assert isinstance(node, node_class)
        assert (node.name, node.internal_name, node.internal_branch_name) == (STEP, STEP, "")

    def test_flags_are_coherent(self, node: BaseNode) -> None:
        assert sum((node.is_executable, node.is_composite, node.is_terminal)) <= 1
        assert node.is_executable == isinstance(node, ExecutableNode)
        assert node.is_composite == isinstance(node, CompositeNode)
        if node.is_terminal:
            assert node.ends_with in (defaults.SUCCESS, defaults.FAIL)
        else:
            assert node.ends_with == "", "only terminal nodes end their dag"
        if not node.is_composite:
            assert node.get_branches() == []

    def test_executable_nodes_move_data_and_retry(
        self, node_class: Type[BaseNode], config: Dict[str, Any], tmp_path: Path, node: BaseNode
    ) -> None:
        if not isinstance(node, ExecutableNode):
            pytest.skip("not an executable node")
        assert node.max_attempts >= 1
        task = node.task()
        assert task is None or isinstance(task, BaseTaskType)
        catalog = {"get": ["in/*.csv"], "put": ["out/model.pkl"]}
        retried = parse(node_class, {**config, "catalog": catalog, "max_attempts": 3}, tmp_path)
        assert isinstance(retried, ExecutableNode)
        assert retried.catalog == CatalogSettings(**catalog)
        assert retried.max_attempts == 3

    # ---- routing -------------------------------------------------------------------------------
    def test_routes_name_steps(self, config: Dict[str, Any], node: BaseNode) -> None:
        routes = node.routes()
        if node.is_terminal:
            assert routes == {}
            with pytest.raises(MagnusError):
                node.get_next_node()
            return
        assert "next" in routes, "a step that does not end its dag leads on"
        for field_name, target in routes.items():
            assert target == config.get(field_name), f"routes()['{field_name}'] is not the step the config names"
            assert "." not in target, "routes name steps of the same dag, not internal names"
        assert node.get_next_node() == routes["next"]
        assert node.get_on_failure_node() in ("", *routes.values())

    def test_on_failure_is_a_route(
        self, node_class: Type[BaseNode], config: Dict[str, Any], tmp_path: Path, node: BaseNode
    ) -> None:
        if not isinstance(node, TraversalNode):
            pytest.skip("not a node that leads on")
        routed = parse(node_class, {**config, "on_failure": "recover"}, tmp_path)
        assert routed.routes()["on_failure"] == "recover"
        assert routed.get_on_failure_node() == "recover"

    # ---- naming --------------------------------------------------------------------------------
    def test_log_names_resolve_map_placeholders(
        self, node_class: Type[BaseNode], config: Dict[str, Any], tmp_path: Path, node: BaseNode
    ) -> None:
        assert node.step_log_name(None) == STEP
        assert node.branch_log_name(None) == ""
        nested = parse(node_class, config, tmp_path, internal_branch_name=NESTED_BRANCH)
        assert nested.internal_name == f"{NESTED_BRANCH}.{STEP}"
        assert nested.step_log_name(MAP_POSITION) == f"outer.a.inner.2.{STEP}"
        assert nested.branch_log_name(MAP_POSITION) == "outer.a.inner.2"

    # ---- composites ----------------------------------------------------------------------------
    def test_composite_branches(
        self,
        node_class: Type[BaseNode],
        config: Dict[str, Any],
        tmp_path: Path,
        parameters: Dict[str, Any],
        node: BaseNode,
    ) -> None:
        if not isinstance(node, CompositeNode):
            pytest.skip("not a composite node")
        nested = parse(node_class, config, tmp_path, internal_branch_name=NESTED_BRANCH)
        assert isinstance(nested, CompositeNode)
        labelled = nested.labelled_branches()
        branches = nested.get_branches()
        assert branches and [graph for _, graph in labelled] == branches
        labels = [label for label, _ in labelled]
        assert all(labels) and len(set(labels)) == len(labels), f"labels must be distinct: {labels}"

        # The orchestrator reads the parameters for dynamic branches only.
        runs = nested.branch_runs(parameters if nested.reads_parameters else {}, MAP_POSITION)
        assert runs and all(isinstance(run, BranchRun) for run in runs)
        assert len({run.name for run in runs}) == len(runs), "each branch run has its own log"
        prefix = nested.step_log_name(MAP_POSITION) + "."
        for run in runs:
            assert run.name.startswith(prefix) and defaults.MAP_PLACEHOLDER not in run.name
            assert any(run.graph is graph for graph in branches)
            assert run.map_variable is not None and MAP_POSITION.items() <= run.map_variable.items()
            for step in run.graph.steps.values():
                assert step.branch_log_name(run.map_variable) == run.name, "a branch's steps log under it"

    # ---- validation and registration -----------------------------------------------------------
    def test_unknown_fields_are_refused(
        self, node_class: Type[BaseNode], config: Dict[str, Any], tmp_path: Path
    ) -> None:
        with_unknown = {**config, UNKNOWN_FIELD: 1}
        if self.ignores_unknown_fields:
            node = parse(node_class, with_unknown, tmp_path)
            assert UNKNOWN_FIELD not in node.model_dump()
            return
        ctx = ParseContext(source="contract.yaml", location=f"dag.steps.{STEP}", base_dir=tmp_path)
        # The two ways the pipeline parser reports a bad step with its location.
        with pytest.raises((ValidationError, ProblemsRecorded)) as raised:
            node_class.parse_from_config(with_unknown, ctx, name=STEP, internal_name=STEP, internal_branch_name="")
        reported = str(raised.value) if isinstance(raised.value, ValidationError) else "\n".join(ctx.problems)
        assert UNKNOWN_FIELD in reported

    def test_node_type_is_its_entry_point_name(self, node_class: Type[BaseNode]) -> None:
        check_registered_as("nodes", node_class.node_type, node_class)

"""Parsing pipelines into graphs: internal names, look-ups, large graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from magnus.errors import PipelineDefinitionError
from magnus.nodes.base import resolve_map_placeholders
from magnus.parsing import parse_pipeline


def parse(dag: Dict[str, Any], tmp_path: Path) -> Any:
    return parse_pipeline({"dag": dag}, source="p.yaml", base_dir=tmp_path)


def terminal() -> Dict[str, Any]:
    return {"success": {"type": "success"}, "fail": {"type": "fail"}}


def test_internal_names_of_nested_steps(tmp_path: Path) -> None:
    (tmp_path / "inner.yaml").write_text(
        "dag:\n  start_at: x\n  steps:\n    x: {type: stub, next: success}\n"
        "    success: {type: success}\n    fail: {type: fail}\n"
    )
    graph = parse(
        {
            "start_at": "par",
            "steps": {
                "par": {
                    "type": "parallel",
                    "next": "nested",
                    "branches": {
                        "a": {
                            "start_at": "m",
                            "steps": {
                                "m": {
                                    "type": "map",
                                    "iterate_on": "xs",
                                    "iterate_as": "x",
                                    "next": "success",
                                    "branch": {
                                        "start_at": "t",
                                        "steps": {"t": {"type": "stub", "next": "success"}, **terminal()},
                                    },
                                },
                                **terminal(),
                            },
                        }
                    },
                },
                "nested": {"type": "dag", "dag_definition": "inner.yaml", "next": "success"},
                **terminal(),
            },
        },
        tmp_path,
    )
    names = {node.internal_name for node in graph.walk()}
    assert "par.a.m.map_variable_placeholder.t" in names
    assert "nested.dag.x" in names
    node = graph.find_node("par.a.m.map_variable_placeholder.t")
    assert node.step_log_name({"x": 3}) == "par.a.m.3.t"
    assert node.branch_log_name({"x": 3}) == "par.a.m.3"


def test_nested_map_placeholders_resolve_outermost_first() -> None:
    name = "outer.map_variable_placeholder.inner.map_variable_placeholder.step"
    assert resolve_map_placeholders(name, {"a": 1, "b": "x"}) == "outer.1.inner.x.step"


def test_long_chains_and_cycles_do_not_recurse(tmp_path: Path) -> None:
    count = 5000
    steps: Dict[str, Any] = {f"s{i}": {"type": "stub", "next": f"s{i + 1}"} for i in range(count)}
    steps[f"s{count}"] = {"type": "stub", "next": "success"}
    parse({"start_at": "s0", "steps": {**steps, **terminal()}}, tmp_path)
    steps[f"s{count}"] = {"type": "stub", "next": "s0"}
    with pytest.raises(PipelineDefinitionError, match="cycle"):
        parse({"start_at": "s0", "steps": {**steps, **terminal()}}, tmp_path)


def test_fail_node_counts_as_reachable(tmp_path: Path) -> None:
    parse({"start_at": "a", "steps": {"a": {"type": "stub", "next": "success"}, **terminal()}}, tmp_path)

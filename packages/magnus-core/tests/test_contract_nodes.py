"""Core's node types against :class:`magnus.testing.NodeContract`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Type

import pytest
import yaml

from magnus.nodes.base import BaseNode
from magnus.nodes.conditional import ConditionalNode
from magnus.nodes.dag import DagNode
from magnus.nodes.loop import LoopNode
from magnus.nodes.map import MapNode
from magnus.nodes.parallel import ParallelNode
from magnus.nodes.stub import StubNode
from magnus.nodes.task import TaskNode
from magnus.nodes.terminal import FailNode, SuccessNode
from magnus.testing import NodeContract


def branch() -> Dict[str, Any]:
    return {
        "start_at": "work",
        "steps": {
            "work": {"type": "stub", "next": "success"},
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }


class TestTaskNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return TaskNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"command": "steps.train", "next": "success"}


class TestShellTaskNode(TestTaskNode):
    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"command": "echo hello", "command_type": "shell", "next": "success"}


class TestStubNode(NodeContract):
    ignores_unknown_fields = True

    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return StubNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"next": "success"}


class TestSuccessNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return SuccessNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {}


class TestFailNode(TestSuccessNode):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return FailNode


class TestParallelNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return ParallelNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"branches": {"a": branch(), "b": branch()}, "next": "success"}


class TestMapNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return MapNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"iterate_on": "items", "iterate_as": "item", "branch": branch(), "next": "success"}

    @pytest.fixture
    def parameters(self) -> Dict[str, Any]:
        return {"items": [1, "two", 3.5]}


class TestDagNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return DagNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        (tmp_path / "inner.yaml").write_text(yaml.safe_dump({"dag": branch()}))
        return {"dag_definition": "inner.yaml", "next": "success"}


class TestConditionalNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return ConditionalNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"parameter": "size", "branches": {"small": branch(), "large": branch()}, "next": "success"}

    @pytest.fixture
    def parameters(self) -> Dict[str, Any]:
        return {"size": "large"}


class TestLoopNode(NodeContract):
    @pytest.fixture
    def node_class(self) -> Type[BaseNode]:
        return LoopNode

    @pytest.fixture
    def config(self, tmp_path: Path) -> Dict[str, Any]:
        return {"branch": branch(), "max_iterations": 3, "break_on": "done", "index_as": "i", "next": "success"}

"""The node contract: what a step of a pipeline declares.

A node is a *description*: its fields, its validation, where it routes (``next``,
``on_failure``) and, for composites, the branch runs it asks for, returned as data. A node never
runs anything and never writes a run log: the orchestrator and the step runner do, choosing what
to do from the class flags declared here, never from the node's type name, so a third-party node
type is handled everywhere a built-in one is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterator, List, Optional, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field

from magnus import defaults
from magnus.errors import MagnusError
from magnus.map_position import position_names
from magnus.validation import WorkingFolder

if TYPE_CHECKING:
    from magnus.parse_context import ParseContext
    from magnus.tasks.base import BaseTaskType


class Dag(Protocol):
    r"""What a node sees of a dag it holds (a composite's branches are :class:`~magnus.graph.Graph`\ s)."""

    internal_branch_name: str

    def walk(self) -> Iterator["BaseNode"]:
        """Every node of the dag and of the dags nested in it."""


class CatalogSettings(BaseModel):
    """A step's ``catalog:`` block: what to get before it runs and put after it succeeds."""

    model_config = ConfigDict(extra="forbid")

    get: List[str] = Field(default_factory=list)
    put: List[str] = Field(default_factory=list)
    compute_data_folder: WorkingFolder = ""


class BaseNode(BaseModel):
    """One step of a graph.

    ``name`` is the step's key in its dag; ``internal_name`` its dot path from the top
    (``parallel_step.branch.step``), with ``map_variable_placeholder`` standing for the value of
    each enclosing map.

    What the runtime does with a node follows from its class flags:

    - ``is_executable``: it runs in one place, through the step runner (subclass
      `ExecutableNode`);
    - ``is_composite``: it is made of branches the orchestrator runs (subclass
      `CompositeNode`);
    - ``is_terminal``: it ends its dag with the status ``ends_with``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    node_type: ClassVar[str] = ""
    is_executable: ClassVar[bool] = False
    is_composite: ClassVar[bool] = False
    is_terminal: ClassVar[bool] = False
    # For terminal nodes: the status the dag holding them ends with.
    ends_with: ClassVar[str] = ""

    name: str
    internal_name: str
    internal_branch_name: str = ""

    @classmethod
    def parse_from_config(cls, config: Dict[str, Any], ctx: "ParseContext", **identity: str) -> "BaseNode":
        """Build the node from its YAML config; raises pydantic's ValidationError on bad fields."""
        return cls(**config, **identity)

    # ---- routing ------------------------------------------------------------------------------
    def routes(self) -> Dict[str, str]:
        """The steps this node can go to, by the field that names them (``next``, ``on_failure``)."""
        return {}

    def get_next_node(self) -> str:
        raise MagnusError(f"step '{self.name}' of type {self.node_type} has no next step")

    def get_on_failure_node(self) -> str:
        return ""

    def override_name(self, executor_name: str) -> str:
        """The override block this step picks for an executor (``overrides: {<executor>: name}``)."""
        return ""

    # ---- naming -------------------------------------------------------------------------------
    def step_log_name(self, map_variable: defaults.TypeMapVariable = None) -> str:
        """The internal name with this run's map values in place of the placeholders."""
        return resolve_map_placeholders(self.internal_name, map_variable)

    def branch_log_name(self, map_variable: defaults.TypeMapVariable = None) -> str:
        """The resolved name of the branch holding this node ('' at the top of the pipeline)."""
        return resolve_map_placeholders(self.internal_branch_name, map_variable)

    # ---- structure ----------------------------------------------------------------------------
    def get_branches(self) -> Sequence["Dag"]:
        """The graphs this node holds (none unless composite)."""
        return []


class TraversalNode(BaseNode):
    """A node that leads on: ``next`` on success, ``on_failure`` (or the fail node) on failure.

    ``overrides`` maps an executor name to a named override block of that executor's config
    (``overrides: {argo: gpu}``), for executors that can change a step's image or resources.
    """

    next_node: str = Field(default="", alias="next")
    on_failure: str = ""
    overrides: Dict[str, Any] = Field(default_factory=dict)

    def routes(self) -> Dict[str, str]:
        found = {"next": self.next_node}
        if self.on_failure:
            found["on_failure"] = self.on_failure
        return found

    def get_next_node(self) -> str:
        return self.next_node

    def get_on_failure_node(self) -> str:
        return self.on_failure

    def override_name(self, executor_name: str) -> str:
        return str(self.overrides.get(executor_name, ""))


class ExecutableNode(TraversalNode):
    """A node that runs in one place: it can move data through the catalog and be retried.

    :meth:`task` is the command the step runner runs; None (a stub) succeeds without running
    anything. ``keeps_execution_log``: what the command printed is put in the catalog.

    ``cache``: ``true`` reuses the outputs of an earlier successful execution with the same cache
    key instead of running; ``false`` never does, even with ``magnus execute --cache`` (a step that
    is not deterministic); unset follows ``--cache``.
    """

    is_executable: ClassVar[bool] = True
    keeps_execution_log: ClassVar[bool] = False

    catalog: Optional[CatalogSettings] = None
    max_attempts: int = Field(default=1, ge=1)
    cache: Optional[bool] = None

    def caches(self, run_caches: bool) -> bool:
        """Whether this step looks for an earlier execution to reuse, in a run started with
        ``--cache`` (``run_caches``) or not: the step's own ``cache`` wins."""
        return run_caches if self.cache is None else self.cache

    def task(self) -> Optional["BaseTaskType"]:
        return None


def internal_name_in(internal_branch_name: str, name: str) -> str:
    """The internal name of step ``name`` of the branch ``internal_branch_name`` ('' at the top):
    the one rule the parser names nodes by, and what finds a node's neighbour in its dag."""
    return f"{internal_branch_name}.{name}" if internal_branch_name else name


def resolve_map_placeholders(name: str, map_variable: defaults.TypeMapVariable) -> str:
    """Replace each placeholder, outermost map first, by the name of that map's item
    (:func:`~magnus.map_position.position_names`)."""
    for item in position_names(map_variable):
        name = name.replace(defaults.MAP_PLACEHOLDER, item, 1)
    return name

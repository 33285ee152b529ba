"""The node contract, and parsing a step's config into the node class its ``type`` names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from magnus import defaults
from magnus.datastore.models import StepAttempt
from magnus.errors import MagnusError
from magnus.plugins import load_plugin
from magnus.timing import duration, now
from magnus.validation import describe_validation_error

if TYPE_CHECKING:
    from magnus.context import RunContext
    from magnus.graph import Graph, ParseContext


class CatalogSettings(BaseModel):
    """A step's ``catalog:`` block: what to get before it runs and put after it succeeds."""

    model_config = ConfigDict(extra="forbid")

    get: List[str] = Field(default_factory=list)
    put: List[str] = Field(default_factory=list)
    compute_data_folder: str = ""


class BaseNode(BaseModel):
    """One step of a graph.

    ``name`` is the step's key in its dag; ``internal_name`` its dot path from the top
    (``parallel_step.branch.step``), with ``map_variable_placeholder`` standing for the value of
    each enclosing map. Nodes are immutable descriptions: what happens at run time goes to the
    run log through the run context.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    node_type: ClassVar[str] = ""
    is_composite: ClassVar[bool] = False
    is_terminal: ClassVar[bool] = False

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

    # ---- naming -------------------------------------------------------------------------------
    def step_log_name(self, map_variable: defaults.TypeMapVariable = None) -> str:
        """The internal name with this run's map values in place of the placeholders."""
        return resolve_map_placeholders(self.internal_name, map_variable)

    def branch_log_name(self, map_variable: defaults.TypeMapVariable = None) -> str:
        """The resolved name of the branch holding this node ('' at the top of the pipeline)."""
        return resolve_map_placeholders(self.internal_branch_name, map_variable)

    # ---- execution ----------------------------------------------------------------------------
    def get_branches(self) -> List["Graph"]:
        """The graphs this node holds (none unless composite)."""
        return []

    def execute(
        self, context: "RunContext", map_variable: defaults.TypeMapVariable = None, mock: bool = False
    ) -> StepAttempt:
        """Run an executable node once in this process and say how it went.

        With ``mock`` the node records a successful attempt without running its command.
        Never raises for a failure of the command: the attempt says FAIL and why.
        """
        raise MagnusError(f"step '{self.name}' of type {self.node_type} is not executable")

    def execute_as_graph(self, context: "RunContext", map_variable: defaults.TypeMapVariable = None) -> None:
        """Run a composite node's branches through the executor."""
        raise MagnusError(f"step '{self.name}' of type {self.node_type} has no branches")

    def fan_out(self, context: "RunContext", map_variable: defaults.TypeMapVariable = None) -> None:
        """Record the branch logs a composite node is about to run."""
        raise MagnusError(f"step '{self.name}' of type {self.node_type} has no branches")

    def fan_in(self, context: "RunContext", map_variable: defaults.TypeMapVariable = None) -> None:
        """Set a composite node's status from its branches' statuses."""
        raise MagnusError(f"step '{self.name}' of type {self.node_type} has no branches")


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


class ExecutableNode(TraversalNode):
    """A node that runs in one place: it can move data through the catalog and be retried."""

    catalog: Optional[CatalogSettings] = None
    max_attempts: int = Field(default=1, ge=1)


def resolve_map_placeholders(name: str, map_variable: defaults.TypeMapVariable) -> str:
    """Replace each placeholder, outermost map first, by the value of that map's iteration."""
    if not map_variable:
        return name
    for value in map_variable.values():
        name = name.replace(defaults.MAP_PLACEHOLDER, str(value), 1)
    return name


def parse_node(name: str, config: Any, ctx: "ParseContext", internal_branch_name: str) -> Optional[BaseNode]:
    """Parse one step; record problems in ``ctx`` and return None when it cannot be built."""
    if "." in name or defaults.COMMAND_FRIENDLY_CHARACTER in name:
        ctx.problem("step names cannot contain '.' or '%' (they separate parts of internal names)")
        return None
    if not isinstance(config, dict):
        ctx.problem(f"a step must be a mapping with a type, got {type(config).__name__}")
        return None
    node_type = config.get("type")
    if not node_type:
        ctx.problem("required field is missing", "type")
        return None
    from magnus.graph import ProblemsRecorded

    try:
        node_class = load_plugin("nodes", str(node_type))
    except MagnusError as exc:
        ctx.problem(str(exc), "type")
        return None

    body = {key: value for key, value in config.items() if key != "type"}
    internal_name = f"{internal_branch_name}.{name}" if internal_branch_name else name
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


def started_attempt() -> StepAttempt:
    """A new attempt, stamped with its start time and marked failed until it succeeds."""
    return StepAttempt(status=defaults.FAIL, start_time=now())


def finish_attempt(attempt: StepAttempt, status: str, message: str = "") -> StepAttempt:
    attempt.status = status
    attempt.message = message
    attempt.end_time = now()
    attempt.duration = duration(attempt.start_time, attempt.end_time)
    return attempt

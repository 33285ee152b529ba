"""The state of the run this process is part of: its id, its services, the step running now.

Set once per process by the entry points (``magnus execute``, ``execute_single_node``, the SDK);
read by the executor, the nodes and the interaction API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional

from magnus import defaults
from magnus.errors import NoRunContextError
from magnus.redaction import Redactor

if TYPE_CHECKING:
    from magnus.catalog import BaseCatalog
    from magnus.datastore.base import BaseRunLogStore
    from magnus.datastore.models import CodeIdentity, RunLog, StepLog
    from magnus.executor.base import BaseExecutor
    from magnus.graph import Graph
    from magnus.pickler import BasePickler
    from magnus.secrets import BaseSecrets
    from magnus.tracker import BaseExperimentTracker


@dataclass
class StepMetrics:
    """Metrics tracked during one step, rendered as magnus 0.5.1's ``user_defined_metrics``."""

    values: Dict[str, Dict[int, Any]] = field(default_factory=dict)

    def record(self, name: str, value: Any, step: int) -> None:
        self.values.setdefault(name, {})[step] = value

    def as_run_log(self) -> Dict[str, Any]:
        """``{name: value}`` for a metric seen only at step 0, else ``{name: {"step": value}}``."""
        rendered: Dict[str, Any] = {}
        for name, by_step in self.values.items():
            rendered[name] = (
                by_step[0] if list(by_step) == [0] else {str(step): value for step, value in by_step.items()}
            )
        return rendered


@dataclass
class RunContext:
    """Everything a run shares between its steps."""

    executor: "BaseExecutor"
    run_log_store: "BaseRunLogStore"
    catalog: "BaseCatalog"
    secrets: "BaseSecrets"
    experiment_tracker: "BaseExperimentTracker"
    pickler: "BasePickler"
    run_id: str
    dag: Optional["Graph"] = None
    dag_hash: str = ""
    dag_definition: Dict[str, Any] = field(default_factory=dict)
    tag: str = ""
    pipeline_file: str = ""
    configuration_file: str = ""
    parameters_file: str = ""
    use_cached: bool = False
    original_run_id: str = ""
    service_configs: Dict[str, Any] = field(default_factory=dict)
    # Set while a step runs, so the interaction API knows where to record things.
    current_step: Optional["StepLog"] = None
    current_map_variable: defaults.TypeMapVariable = None
    metrics: StepMetrics = field(default_factory=StepMetrics)
    redactor: Redactor = field(default_factory=Redactor)
    _code_identity: Optional["CodeIdentity"] = None
    _original_run_log: Optional["RunLog"] = None

    @property
    def code_identity(self) -> "CodeIdentity":
        """The git identity of the code, looked up on first use and reused for every step."""
        if self._code_identity is None:
            from magnus.code_identity import git_code_identity

            self._code_identity = git_code_identity()
        return self._code_identity

    @property
    def original_run_log(self) -> Optional["RunLog"]:
        """The run log being resumed with ``--use-cached``, read once."""
        if self.use_cached and self._original_run_log is None:
            self._original_run_log = self.run_log_store.get_run_log_by_id(self.original_run_id).model_copy(deep=True)
        return self._original_run_log


run_context: Optional[RunContext] = None


def current() -> RunContext:
    """The run this process is part of.

    Raises:
        NoRunContextError: no magnus run is active in this process.
    """
    if run_context is None:
        raise NoRunContextError("no magnus run is active in this process (call this from a step of a pipeline)")
    return run_context


def set_current(context: Optional[RunContext]) -> None:
    global run_context
    run_context = context

"""What one run is: its options as the user gave them, and the services it records through.

Both are values built once per process by the entry points and passed explicitly to whatever
needs them (the orchestrator, the step runner, executors); nothing looks them up globally.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Mapping

from magnus.errors import MagnusError, UserInputError
from magnus.redaction import Redactor
from magnus.runtime.events import NO_OBSERVER, RunObserver

if TYPE_CHECKING:
    from magnus.catalog import BaseCatalog
    from magnus.code_identity import CodeIdentityLookup
    from magnus.datastore.base import BaseRunLogStore
    from magnus.datastore.models import CodeIdentity, RunLog
    from magnus.graph import Graph
    from magnus.pickler import BasePickler
    from magnus.runtime.environment import ParameterVariables
    from magnus.runtime.plan import Plan
    from magnus.secrets import BaseSecrets
    from magnus.service import BaseService
    from magnus.tracker import BaseExperimentTracker


@dataclass(frozen=True)
class RunOptions:
    """The options of a run, as given on the command line, to the SDK or to ``execute_single_node``.

    ``use_cached`` is the id of the run being resumed ('' for a fresh run); ``cache``: every step
    whose own ``cache`` is unset reuses an earlier execution with its cache key (``--cache``).
    """

    pipeline_file: str = ""
    configuration_file: str = ""
    parameters_file: str = ""
    run_id: str = ""
    tag: str = ""
    use_cached: str = ""
    cache: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A parsed pipeline: the graph to walk and the ``dag`` mapping it was parsed from."""

    graph: "Graph"
    definition: Mapping[str, Any]
    dag_hash: str = ""

    @functools.cached_property
    def plan(self) -> "Plan":
        """The execution plan of the graph, compiled once."""
        from magnus.runtime.plan import compile_plan

        return compile_plan(self.graph)


def _start_code_lookup() -> "CodeIdentityLookup":
    from magnus.code_identity import CodeIdentityLookup

    return CodeIdentityLookup()


@dataclass(frozen=True)
class RunServices:
    """One run's id, options, pipeline and services, as every runtime part receives them (all of them set).

    Frozen: what changes during a run lives in the services (the store) or in the few per-run
    caches below, each computed at most once per process: the git identity of the code, the run
    log being resumed, the encoded parameter variables, and the secret values to mask (which grow
    as steps read secrets).
    """

    run_id: str
    options: RunOptions
    pipeline: Pipeline
    run_log_store: "BaseRunLogStore"
    catalog: "BaseCatalog"
    secrets: "BaseSecrets"
    experiment_tracker: "BaseExperimentTracker"
    pickler: "BasePickler"
    # The parameters a new run starts with: the parameters file, then MAGNUS_PRM_ variables.
    initial_parameters: Mapping[str, Any] = field(default_factory=dict)
    # What the run log's run_config records (magnus 0.5.1's keys), made by the entry point.
    run_config: Mapping[str, Any] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)
    # Who watches the walk (the command line's progress renderer); nobody by default.
    events: RunObserver = NO_OBSERVER
    # The git identity of the code, looked up from the moment the services exist.
    code_lookup: "CodeIdentityLookup" = field(default_factory=_start_code_lookup, repr=False, compare=False)
    # Where this process runs the steps it runs, as its engine names it ({"ray_node_id": ...}): added
    # to the code identity of each of them, since the walk that recorded their logs ran elsewhere.
    runs_on: Mapping[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.options.tag

    @property
    def original_run_id(self) -> str:
        return self.options.use_cached

    @functools.cached_property
    def code_identity(self) -> "CodeIdentity":
        """The git identity of the code, shared by every step (waits for git's answer the first time)."""
        return self.code_lookup.result()

    @functools.cached_property
    def parameter_variables(self) -> "ParameterVariables":
        """The ``MAGNUS_PRM_`` variables of this run's steps in this process, each value encoded once."""
        from magnus.runtime.environment import ParameterVariables

        return ParameterVariables()

    @functools.cached_property
    def original_run_log(self) -> "RunLog":
        """The run log resumed with ``--use-cached``, read once.

        Raises:
            UserInputError: this run resumes nothing, or the run to resume cannot be read.
        """
        if not self.options.use_cached:
            raise UserInputError("this run resumes no other run (no --use-cached)")
        try:
            return self.run_log_store.get_run_log_by_id(self.options.use_cached).model_copy(deep=True)
        except MagnusError as exc:
            raise UserInputError(f"--use-cached {self.options.use_cached}: {exc}") from exc

    def services(self) -> Dict[str, "BaseService"]:
        """The services by their configuration key, for checks that go over all of them."""
        return {
            "run_log_store": self.run_log_store,
            "catalog": self.catalog,
            "secrets": self.secrets,
            "experiment_tracker": self.experiment_tracker,
            "pickler": self.pickler,
        }

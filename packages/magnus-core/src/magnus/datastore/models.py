"""The run log: what ran, with which parameters, code and data, and how it ended.

The JSON layout is magnus 0.5.1's, field for field, so tools that read old run logs read ours;
a step that put python objects also has ``objects`` (their names and sizes), which 0.5.1 had not.
Internal names are dot paths: ``step``, ``step.branch``, ``step.branch.step`` and so on; a map
branch is named by its iteration value (``map_step.3``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from magnus import defaults
from magnus.errors import BranchLogNotFoundError, StepLogNotFoundError


class DataCatalog(BaseModel):
    """One file moved through the catalog by a step."""

    model_config = ConfigDict(extra="allow")

    name: str
    data_hash: str = ""
    catalog_relative_path: str = ""
    catalog_handler_location: str = ""
    stage: str = ""


class StepAttempt(BaseModel):
    """One try of a step; a step with retries has several."""

    attempt_number: int = 0
    start_time: str = ""
    end_time: str = ""
    duration: str = ""
    status: str = defaults.FAIL
    message: str = ""
    parameters: Dict[str, Any] = Field(default_factory=dict)
    # What the attempt set (returned or exported), as merged into the run's parameters: a map's
    # fan-in merges its iterations' in iteration order from here.
    output_parameters: Dict[str, Any] = Field(default_factory=dict)


class CodeIdentity(BaseModel):
    """The version of the code a step ran: a git commit, or an image digest for containers."""

    model_config = ConfigDict(extra="allow")

    code_identifier: Optional[str] = ""
    code_identifier_type: Optional[str] = ""
    code_identifier_dependable: Optional[bool] = False
    code_identifier_url: Optional[str] = ""
    code_identifier_message: Optional[str] = ""


class StepReference(BaseModel):
    """A step of a run, as the store's index names it: where a reused step's outputs came from, or
    which step put a file. ``time`` is when that step ended."""

    run_id: str
    step: str
    time: str = ""


class CacheRecord(BaseModel):
    """What an executable step's result depends on, as one key and by component.

    ``key`` is a sha256 over every component below (a parameter masked as secret included by its
    real value, so that changing a secret changes the key, yet only the hash is kept).
    ``components`` says what went in, each entry a name and a hash, so ``magnus runs why``
    can name what differs between two executions: ``code`` (a file or the command, by name),
    ``parameters`` (by name, of the value as recorded, secrets masked), ``files`` (catalog files
    it got, by path, their content hash), ``objects`` (objects it received, by name) and
    ``settings`` (task type and fields, overrides). ``reused_from`` names the execution whose
    outputs a reused step restored; ``enabled`` whether the step looked for one.
    """

    key: str
    components: Dict[str, Dict[str, str]] = Field(default_factory=dict)
    enabled: bool = False
    reused_from: Optional[StepReference] = None


class StepLog(BaseModel):
    """What happened to one node, with the branches it holds when it is composite."""

    name: str
    internal_name: str
    status: str = defaults.FAIL
    step_type: str = "task"
    message: str = ""
    mock: bool = False
    code_identities: List[CodeIdentity] = Field(default_factory=list)
    attempts: List[StepAttempt] = Field(default_factory=list)
    user_defined_metrics: Dict[str, Any] = Field(default_factory=dict)
    branches: Dict[str, "BranchLog"] = Field(default_factory=dict)
    data_catalog: List[DataCatalog] = Field(default_factory=list)
    # The objects the step put (``returns`` of kind object, ``put_object``): name -> pickled bytes.
    objects: Dict[str, int] = Field(default_factory=dict)
    # What its result depends on (its cache key) and, when reused, where it came from.
    cache: Optional[CacheRecord] = None

    @model_serializer(mode="wrap")
    def _without_empty_objects(self, handler: SerializerFunctionWrapHandler) -> Dict[str, Any]:
        """A step that put no object and has no cache key is written in magnus 0.5.1's layout,
        without ``objects`` or ``cache``."""
        dumped: Dict[str, Any] = handler(self)
        if not self.objects:
            dumped.pop("objects", None)
        if self.cache is None:
            dumped.pop("cache", None)
        return dumped

    def get_data_catalogs_by_stage(self, stage: str = "put") -> List[DataCatalog]:
        """Catalog entries of this step and of every step in its branches recorded at ``stage``."""
        found = [entry for entry in self.data_catalog if entry.stage == stage]
        for branch in self.branches.values():
            found.extend(branch.get_data_catalogs_by_stage(stage))
        return found

    def add_data_catalogs(self, entries: List[DataCatalog]) -> None:
        self.data_catalog.extend(entries)


class BranchLog(BaseModel):
    """A branch of a composite step: a parallel branch, one map iteration or a nested dag."""

    internal_name: str
    status: str = defaults.FAIL
    steps: Dict[str, StepLog] = Field(default_factory=dict)

    def get_data_catalogs_by_stage(self, stage: str = "put") -> List[DataCatalog]:
        found: List[DataCatalog] = []
        for step in self.steps.values():
            found.extend(step.get_data_catalogs_by_stage(stage))
        return found


class RunLog(BaseModel):
    """The whole record of a run."""

    run_id: str
    dag_hash: Optional[str] = None
    use_cached: bool = False
    tag: Optional[str] = ""
    original_run_id: Optional[str] = ""
    status: str = defaults.FAIL
    steps: Dict[str, StepLog] = Field(default_factory=dict)
    parameters: Dict[str, Any] = Field(default_factory=dict)
    run_config: Dict[str, Any] = Field(default_factory=dict)

    def get_data_catalogs_by_stage(self, stage: str = "put") -> List[DataCatalog]:
        found: Dict[str, DataCatalog] = {}
        for step in self.steps.values():
            for entry in step.get_data_catalogs_by_stage(stage):
                found.setdefault(entry.name, entry)
        return list(found.values())

    def search_step_by_internal_name(self, internal_name: str) -> Tuple[StepLog, Optional[BranchLog]]:
        """Find a step log by its dot path, with the branch that holds it (None at the top)."""
        holder = _walk(self, internal_name, StepLog)
        if holder is None:
            raise StepLogNotFoundError(self.run_id, internal_name)
        step, parent = holder[0], holder[1]
        return step, parent if isinstance(parent, BranchLog) else None

    def search_branch_by_internal_name(
        self, internal_name: str
    ) -> Tuple[Union[BranchLog, "RunLog"], Optional[StepLog]]:
        """Find a branch log by its dot path, with the step that holds it; '' is the run itself."""
        if not internal_name:
            return self, None
        holder = _walk(self, internal_name, BranchLog)
        if holder is None:
            raise BranchLogNotFoundError(self.run_id, internal_name)
        branch, parent = holder[0], holder[1]
        return branch, parent if isinstance(parent, StepLog) else None


StepLog.model_rebuild()


_Log = TypeVar("_Log", StepLog, BranchLog)


def _walk(run_log: RunLog, internal_name: str, wanted: type[_Log]) -> Optional[Tuple[_Log, Any]]:
    """Descend steps and branches along a dot path to a log of type ``wanted``, with its holder.

    A map's branches are named by their values, which may hold dots (``0.5``) and share prefixes
    (``0`` and ``0.5``): keys are tried from the shortest prefix up, backing out of one that leads
    nowhere. Cost is a handful of dict look-ups, independent of the size of the run.
    """
    parts = internal_name.split(".")

    def descend(container: Dict[str, Any], parent: Any, start: int) -> Optional[Tuple[Any, Any]]:
        for end in range(start + 1, len(parts) + 1):
            found = container.get(".".join(parts[:end]))
            if found is None:
                continue
            if end == len(parts):
                if isinstance(found, wanted):
                    return found, parent
                continue
            inner = found.branches if isinstance(found, StepLog) else found.steps
            result = descend(inner, found, end)
            if result is not None:
                return result
        return None

    return descend(run_log.steps, run_log, 0)

"""Pipelines in python, compiled to the same ``dag`` mapping a YAML file holds.

::

    from magnus import Pipeline, Task, Stub

    prepare = Task(name="prepare", command="examples.functions.prepare")
    train = Task(name="train", command="examples.functions.train", terminate_with_success=True)
    train.depends_on(prepare)              # or: prepare >> train
    Pipeline(start_at=prepare, steps=[prepare, train], add_terminal_nodes=True).execute()

A pipeline built here is checked and run by exactly the code that checks and runs YAML: a step's
fields are its node type's (the same models parse YAML steps), the SDK adds only names and wiring.
"""

from __future__ import annotations

import inspect
import itertools
import re
import sys
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from magnus.datastore.models import RunLog
from magnus.errors import MagnusError, PipelineDefinitionError, UserInputError
from magnus.nodes.base import CatalogSettings as Catalog

if TYPE_CHECKING:
    from magnus.runtime.services import Pipeline as ParsedPipeline


class BaseTraversal(BaseModel):
    """A step that leads somewhere: to ``next_node``, or ends the pipeline.

    Only its name and where it leads are the SDK's: every other field is the node type's own (the
    same model a YAML step is parsed into checks it when the pipeline is built), given as keywords
    (``command``, ``catalog``, ``iterate_on``, ``branch``...), pipelines and models as themselves.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, arbitrary_types_allowed=True)

    node_type: ClassVar[str] = ""

    name: str
    next_node: str = Field(default="", alias="next")
    on_failure: str = ""
    terminate_with_success: bool = False
    terminate_with_failure: bool = False

    _defined_at: str = PrivateAttr(default="")

    def model_post_init(self, __context: Any) -> None:
        """Remember the line of the user's code that made this step: errors point there."""
        self._defined_at = _user_line()

    @property
    def defined_at(self) -> str:
        """``file:line`` of the code that made this step ('' when it is not known)."""
        return self._defined_at

    @property
    def is_wired(self) -> bool:
        """Whether the step says where it leads (``>>``, ``next``, or ending the pipeline)."""
        return bool(self.next_node or self.terminate_with_success or self.terminate_with_failure)

    def depends_on(self, node: "BaseTraversal") -> "BaseTraversal":
        """Run this step after ``node`` (sets ``node``'s next step to this one)."""
        if node.next_node and node.next_node != self.name:
            raise UserInputError(f"step '{node.name}' already leads to '{node.next_node}'")
        if node.terminate_with_success or node.terminate_with_failure:
            raise UserInputError(f"step '{node.name}' ends the pipeline; nothing can depend on it")
        node.next_node = self.name
        return self

    def __rshift__(self, other: "BaseTraversal") -> "BaseTraversal":
        """``a >> b``: b runs after a."""
        other.depends_on(self)
        return other

    def __lshift__(self, other: "BaseTraversal") -> "BaseTraversal":
        """``a << b``: a runs after b."""
        self.depends_on(other)
        return other

    def _routing(self) -> Dict[str, Any]:
        routing: Dict[str, Any] = {}
        if self.terminate_with_success:
            routing["next"] = "success"
        elif self.terminate_with_failure:
            routing["next"] = "fail"
        elif self.next_node:
            routing["next"] = self.next_node
        if self.on_failure:
            routing["on_failure"] = self.on_failure
        return routing

    def to_step(self) -> Dict[str, Any]:
        """The step's YAML mapping."""
        fields = {key: _as_yaml(value) for key, value in (self.model_extra or {}).items()}
        return {"type": self.node_type, **fields, **self._routing()}


class Task(BaseTraversal):
    """A task: ``command`` run as ``command_type`` (python function path, shell command, notebook).

    The fields are a YAML task's: ``command``, ``command_type``, ``catalog`` (a `Catalog`),
    ``overrides``, ``max_attempts``, ``cache`` (``True``: reuse an earlier execution with the same
    cache key; ``False``: never, even with ``execute(cache=True)``) and the task type's own
    (``notebook_output_path``...).

    A python task's ``returns`` names what its function returns (one value, or a tuple of one
    per name): a name is a parameter, ``pickled(name)`` an object (pickled into the catalog,
    given to later steps whose function has an argument ``name``), ``metric(name)`` a metric::

        from magnus import metric, pickled

        train = Task(name="train", command="steps.train", returns=["rows", pickled("model"), metric("score")])
    """

    node_type: ClassVar[str] = "task"


class Stub(BaseTraversal):
    """A placeholder step that succeeds without doing anything; extra fields are kept and ignored."""

    node_type: ClassVar[str] = "stub"


class Parallel(BaseTraversal):
    """Named branches (``branches={name: Pipeline}``), each a pipeline, all run and all must succeed."""

    node_type: ClassVar[str] = "parallel"


class Map(BaseTraversal):
    """Run ``branch`` (a `Pipeline`) once for each value of the list parameter ``iterate_on``, as ``iterate_as``.

    What the iterations set (returned or exported) is merged into the run's parameters in
    iteration order, whatever order they end in: the last iteration that sets a parameter gives
    its value (magnus 0.5.1's behaviour, now the same on every run even with workers). With
    ``reducer="collect"`` each parameter set by any iteration becomes the list of every
    iteration's value instead, in iteration order (``None`` where an iteration did not set it);
    with ``reducer="mypackage.reduce.best"`` it becomes what that function returns given that list.
    """

    node_type: ClassVar[str] = "map"


class Dag(BaseTraversal):
    """A nested pipeline run as one step (``type: dag``): ``dag=Pipeline(...)``, or
    ``dag_definition="file.yaml"`` (a YAML file's dag, as in magnus 0.5.1). Its steps are logged
    under ``<name>.dag``; parameters flow in and out of it as between any steps."""

    node_type: ClassVar[str] = "dag"


class Conditional(BaseTraversal):
    """Run the one branch (``branches={name: Pipeline}``) named by the value of the run parameter
    ``parameter`` (its string form: ``"small"``, ``"True"``, ``"3"``), else ``default`` (a
    `Pipeline`) when given; a value no branch matches, without a default, fails the step.

    ::

        route = Conditional(name="route", parameter="dataset_size",
                            branches={"small": quick, "large": distributed}, default=skip)
    """

    node_type: ClassVar[str] = "conditional"


class Loop(BaseTraversal):
    """Run ``branch`` (a `Pipeline`) again and again, ``index_as`` = 0, 1, ..., until the boolean
    parameter ``break_on`` is true, at most ``max_iterations`` times (reaching the limit succeeds).

    What an iteration sets is in the parameters of the next and after the loop::

        train = Loop(name="train_until_good", branch=training, max_iterations=10,
                     break_on="good_enough", index_as="iteration")
    """

    node_type: ClassVar[str] = "loop"


def _as_yaml(value: Any) -> Any:
    """A field as a YAML step holds it: a pipeline as its dag, a model (a `Catalog`) as its mapping."""
    if isinstance(value, Pipeline):
        return value.dag()
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_defaults=True)
    if isinstance(value, dict):
        return {key: _as_yaml(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_yaml(item) for item in value]
    return value


class Success(BaseModel):
    """Where a pipeline ends well."""

    name: str = "success"

    def to_step(self) -> Dict[str, Any]:
        return {"type": "success"}


class Fail(BaseModel):
    """Where a pipeline ends badly."""

    name: str = "fail"

    def to_step(self) -> Dict[str, Any]:
        return {"type": "fail"}


StepType = Union[Task, Stub, Parallel, Map, Dag, Conditional, Loop, Success, Fail]


class Pipeline(BaseModel):
    """A list of steps, where to start (the first step unless ``start_at`` says), and (by default)
    ``success``/``fail`` nodes added for you."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    steps: List[StepType]
    start_at: Union[StepType, str, None] = None
    name: str = ""
    description: str = ""
    add_terminal_nodes: bool = True

    _parsed: Any = PrivateAttr(default=None)

    def __init__(self, **fields: Any) -> None:
        """Build and check the pipeline; a mistake is raised from here, not from deep in the checks
        (its traceback ends at the line of the user's code that built the pipeline)."""
        try:
            super().__init__(**fields)
        except MagnusError as exc:
            raise exc.with_traceback(None) from None

    def model_post_init(self, __context: Any) -> None:
        """Check the pipeline as soon as it is built (as magnus 0.5.1 did), not only when run.

        Raises:
            UserInputError: two steps share a name, or a step other than the last leads nowhere
                (said in the SDK's terms, with the line that made the step).
        """
        from magnus.entrypoints import load_dag

        seen: Dict[str, BaseModel] = {}
        for step in self.steps:
            if step.name in seen:
                where = " and ".join(filter(None, [_where(seen[step.name]), _where(step)]))
                raise UserInputError(
                    f"two steps are named '{step.name}'{f' (made at {where})' if where else ''}: "
                    "the steps of a pipeline need names of their own"
                )
            seen[step.name] = step
        routing = [step for step in self.steps if isinstance(step, BaseTraversal)]
        if any(step.is_wired for step in routing):  # wired by hand: only the last may be left out
            for step in routing[:-1]:
                if not step.is_wired:
                    raise UserInputError(
                        f"step '{step.name}'{_at(step)} leads nowhere: chain it (step >> next_step), "
                        "or end the pipeline there (terminate_with_success=True)"
                    )
        try:
            self._parsed = load_dag(self.dag(), source=self.name or "pipeline")
        except PipelineDefinitionError as exc:  # said of the steps as the code made them
            raise PipelineDefinitionError([_in_sdk_terms(problem, seen) for problem in exc.problems]) from None

    @property
    def parsed(self) -> "ParsedPipeline":
        """The pipeline as magnus runs it (parsed and checked when it was built)."""
        parsed: ParsedPipeline = self._parsed
        return parsed

    def dag(self) -> Dict[str, Any]:
        """The pipeline's ``dag`` mapping, as it would be written in YAML.

        Steps none of which says where it leads run in the order they are listed; the last step
        leads to success when it says nothing.
        """
        steps = {step.name: step.to_step() for step in self.steps}
        routing = [step for step in self.steps if isinstance(step, BaseTraversal)]
        if routing and not any(step.is_wired for step in routing):  # Pipeline(steps=[a, b, c]): a >> b >> c
            for step, following in itertools.pairwise(routing):
                steps[step.name]["next"] = following.name
            if self.add_terminal_nodes:
                steps[routing[-1].name]["next"] = Success().name
        if self.add_terminal_nodes:
            steps.setdefault("success", Success().to_step())
            steps.setdefault("fail", Fail().to_step())
        first = self.start_at if self.start_at is not None else self.steps[0] if self.steps else ""
        dag: Dict[str, Any] = {"start_at": first if isinstance(first, str) else first.name, "steps": steps}
        if self.description:
            dag["description"] = self.description
        if self.name:
            dag["name"] = self.name
        return dag

    def execute(
        self,
        configuration_file: str = "",
        run_id: str = "",
        tag: str = "",
        parameters_file: str = "",
        use_cached: str = "",
        log_level: str = "WARNING",
        quiet: bool = False,
        parameters: Optional[Dict[str, Any]] = None,
        cache: bool = False,
    ) -> Optional[RunLog]:
        """Check and run the pipeline with the configured executor; return its run log.

        ``parameters`` start the run on top of ``parameters_file`` (``MAGNUS_PRM_`` variables on top
        of both, as for a file): they are written, with the file's, to a parameters file under
        ``.magnus/parameters/`` that every process of the run reads, so they reach steps run in
        containers, jobs and pods too.

        Prints what ``magnus execute`` prints, on stderr: a line per step, how the run ended, and
        for a failed run the step it failed at and how to resume it (``quiet``: nothing but that
        failure). None when the executor hands the run to an orchestrator (Argo), where its run
        log is written.

        ``cache``: as ``magnus execute --cache``, each step whose own ``cache`` is unset reuses an
        earlier successful execution with the same cache key (see "Caching and lineage").
        """
        import logging

        from magnus.entrypoints import RunOptions, run_pipeline
        from magnus.progress import ProgressRenderer, failure_line
        from magnus.runtime.events import NO_OBSERVER

        logging.getLogger("magnus").setLevel(log_level)
        caller = _caller_file()
        if parameters:
            parameters_file = _parameters_written(parameters_file, parameters)
        options = RunOptions(
            pipeline_file=caller,
            configuration_file=configuration_file,
            parameters_file=parameters_file,
            run_id=run_id,
            tag=tag,
            use_cached=use_cached,
            cache=cache,
        )
        script = caller.rsplit("/", 1)[-1]
        renderer = None if quiet else ProgressRenderer(resume=lambda run: f"execute(use_cached={run!r}) in {script}")
        try:
            run_log = run_pipeline(self._parsed, options, events=renderer or NO_OBSERVER)
            failure = failure_line(run_log)
            if failure:
                sys.stderr.write(failure + "\n")
        finally:
            if renderer is not None:
                renderer.summary()
        return run_log


def _caller_file() -> str:
    """The script that called ``execute`` (recorded as the run's pipeline file)."""
    frame = inspect.currentframe()
    for _ in range(2):
        frame = frame.f_back if frame else None
    return frame.f_code.co_filename if frame else ""


def _parameters_written(parameters_file: str, given: Dict[str, Any]) -> str:
    """A parameters file holding ``parameters_file``'s parameters with ``given`` on top; its path.

    Named by its content (``.magnus/parameters/<digest>.yaml``): a run started again with the same
    parameters reads the same file.

    Raises:
        ParameterError: a name or value ``given`` cannot be a parameter's (named), or the file's.
    """
    import hashlib
    import json
    from pathlib import Path

    from magnus.atomic import write_atomically
    from magnus.errors import ParameterError
    from magnus.parameters import load_parameters_file, parameter_problem

    merged = load_parameters_file(parameters_file) if parameters_file else {}
    for name, value in given.items():
        problem = parameter_problem(str(name), value)
        if problem:
            raise ParameterError(f"execute(parameters=...): {problem}")
    merged.update({str(name): value for name, value in given.items()})
    try:
        text = json.dumps(merged, sort_keys=True, allow_nan=False)  # JSON is YAML: read back as any file
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"execute(parameters=...): parameters must be JSON data: {exc}") from None
    path = Path(".magnus") / "parameters" / f"{hashlib.sha1(text.encode()).hexdigest()[:16]}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode(), durable=False)
    return str(path)


def _in_sdk_terms(problem: str, steps: Dict[str, BaseModel]) -> str:
    """A problem the checks found (``pipeline: dag.steps.clean.command: ...``) said of the step as the
    code made it: ``step 'clean' (made at flow.py:12): command: ...``. Problems of nested dags keep
    their path inside the step."""
    matched = _YAML_LOCATION.match(problem)
    if matched is None or matched.group("step") not in steps:
        return problem
    step = steps[matched.group("step")]
    where = _at(step)
    inside = matched.group("inside")
    return f"step '{matched.group('step')}'{where}: {inside + ': ' if inside else ''}{matched.group('what')}"


# Where the checks locate a problem of a top-level step: ``<source>: dag.steps.<name>[.<field...>]: <what>``.
_YAML_LOCATION = re.compile(r"^[^:]*: dag\.steps\.(?P<step>[^.:]+)(?:\.(?P<inside>[^:]+))?: (?P<what>.*)$", re.S)


def _user_line() -> str:
    """``file:line`` of the first caller outside magnus and pydantic: the user's code making a step."""
    frame = inspect.currentframe()
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module == "magnus" or module.startswith(("magnus.", "pydantic"))):
            return f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _where(step: BaseModel) -> str:
    return step.defined_at if isinstance(step, BaseTraversal) else ""


def _at(step: BaseModel) -> str:
    where = _where(step)
    return f" (made at {where})" if where else ""


__all__ = [
    "BaseTraversal",
    "Catalog",
    "Conditional",
    "Dag",
    "Fail",
    "Loop",
    "Map",
    "Parallel",
    "Pipeline",
    "Stub",
    "Success",
    "Task",
]

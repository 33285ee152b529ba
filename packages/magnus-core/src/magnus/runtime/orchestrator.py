"""Walking a pipeline: step logs, resume, routing, composites, and the run's final status.

The :class:`Orchestrator` owns the run log of the walk: it records each step as it starts,
reuses the steps that succeeded in the run being resumed (``--use-cached``), routes on each
step's status, fans composite steps out to their branches and in again, ends branches at their
terminal nodes, and writes the run's final status once. Where a step runs and how branches are
scheduled is the executor's decision, asked through :class:`StepLauncher`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Sequence

from magnus import defaults
from magnus.datastore.models import BranchLog, StepAttempt, StepLog
from magnus.errors import MagnusError, RunLogExistsError, StepLogNotFoundError, UserInputError
from magnus.nodes.base import ExecutableNode, resolve_map_placeholders
from magnus.nodes.composite import BranchRun, CompositeNode
from magnus.runtime.step import INTERRUPTED, StepRunner, new_step_log
from magnus.timing import duration, now

if TYPE_CHECKING:
    from magnus.datastore.base import BaseRunLogStore
    from magnus.graph import Graph
    from magnus.nodes.base import BaseNode
    from magnus.runtime.request import StepRequest
    from magnus.runtime.services import RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)


class StepLauncher(Protocol):
    """What the orchestrator asks of an executor: where a step runs, how branches are scheduled."""

    def run_step(
        self, services: "RunServices", node: ExecutableNode, map_variable: defaults.TypeMapVariable, step_log: StepLog
    ) -> Optional[StepLog]:
        """Run an executable step; its final log when it ran here, None when it ran elsewhere."""

    def run_branches(
        self, services: "RunServices", runs: Sequence[BranchRun], run_branch: Callable[[BranchRun], str]
    ) -> None:
        """Run every branch of a composite step, each with ``run_branch``, before returning."""


class Orchestrator:
    """Walks one run's pipeline in this process, launching steps through ``launcher``."""

    def __init__(self, services: "RunServices", launcher: Optional[StepLauncher] = None) -> None:
        self.services = services
        self.launcher = launcher
        self._created = False  # whether this orchestrator created the run log (and so ends the run)
        self.events = services.events
        self._started: Dict[str, float] = {}  # steps in progress in this walk: when each started

    @property
    def _store(self) -> "BaseRunLogStore":
        return self.services.run_log_store

    # ---- the run ---------------------------------------------------------------------------------
    def run(self) -> str:
        """Create the run log, walk the pipeline, write the final status once; return it.

        The final status is written even when the walk is interrupted, so the run log always says
        how the run ended: SUCCESS only when the pipeline reached its success node.
        """
        services = self.services
        assert services.pipeline is not None, "a run walks a pipeline"
        reached = defaults.FAIL
        started = time.monotonic()
        try:
            self.begin_run()
            logger.info("run %s: walking %s", services.run_id, services.options.pipeline_file or "the pipeline")
            self.events.run_started(services)
            reached = self.walk(services.pipeline.graph)
        finally:
            status = defaults.SUCCESS if reached == defaults.SUCCESS else defaults.FAIL
            if self._created:  # a run id another run holds is not this run's to end
                self._store.update_run_log_status(services.run_id, status)
                services.experiment_tracker.end_run(status)
                logger.info("run %s ended %s", services.run_id, status)
                self.events.run_ended(services.run_id, status, time.monotonic() - started)
        return status

    def begin_run(self) -> None:
        """Create the run log with the initial parameters and the run config.

        With ``--use-cached`` the old run's parameters are carried over and its catalog made
        available, as in magnus 0.5.1.
        """
        services = self.services
        parameters = dict(services.initial_parameters)
        if services.original_run_id:
            original = services.original_run_log
            parameters.update(original.parameters)
            pipeline = services.pipeline
            if pipeline is not None and original.dag_hash and original.dag_hash != pipeline.dag_hash:
                logger.warning("the pipeline changed since run %s: reusing its steps by name", original.run_id)
            services.catalog.sync_between_runs(services.original_run_id, services.run_id)
        self.create_run_log(parameters)

    def create_run_log(self, parameters: Dict[str, Any]) -> None:
        """Claim the run id in the store, record the parameters and config, start tracking.

        Raises:
            RunLogExistsError: the run id is taken; nothing was written.
        """
        services = self.services
        self._store.create_run_log(
            run_id=services.run_id,
            dag_hash=services.pipeline.dag_hash if services.pipeline else "",
            use_cached=bool(services.original_run_id),
            tag=services.tag,
            original_run_id=services.original_run_id,
            status=defaults.PROCESSING,
        )
        self._created = True
        recorded = services.redactor.redact_data(parameters)  # a secret's value is never recorded
        self._store.set_parameters(services.run_id, recorded)
        self._store.set_run_config(services.run_id, services.redactor.redact_data(dict(services.run_config)))
        services.experiment_tracker.start_run(services.run_id, services.tag, recorded)

    # ---- the walk --------------------------------------------------------------------------------
    def walk(self, graph: "Graph", map_variable: defaults.TypeMapVariable = None) -> str:
        """Run a graph from ``start_at`` to a terminal node; return the status that node ends it with."""
        node = graph.get_node_by_name(graph.start_at)
        while True:
            try:
                status = self.execute_node(node, map_variable)
            except KeyboardInterrupt:
                self._interrupted(node, map_variable)
                raise
            if node.is_terminal:
                return node.ends_with
            if status == defaults.SUCCESS:
                node = graph.get_node_by_name(node.get_next_node())
            else:
                node = graph.get_node_by_name(node.get_on_failure_node() or graph.get_fail_node().name)

    def _interrupted(self, node: "BaseNode", map_variable: defaults.TypeMapVariable) -> None:
        """Ctrl-C during ``node``: it (when still in progress), its unfinished branches and the
        branch holding it end FAIL.

        The run's own status is written by :meth:`run` as the interrupt passes through it.
        """
        store, run_id = self._store, self.services.run_id
        name = node.step_log_name(map_variable)
        started = self._started.pop(name, None)
        try:
            if store.get_step_log(run_id, name).status in (defaults.CREATED, defaults.PROCESSING):
                store.update_step_log_status(run_id, name, defaults.FAIL, INTERRUPTED)
            if started is not None:
                seconds = time.monotonic() - started
                self.events.step_ended(name, node.node_type, map_variable, defaults.FAIL, seconds, INTERRUPTED)
            if node.is_composite:
                for branch, status in store.get_branch_statuses(run_id, name).items():
                    if status == defaults.PROCESSING:
                        store.update_branch_log_status(run_id, branch, defaults.FAIL)
            branch = node.branch_log_name(map_variable)
            if branch:
                store.update_branch_log_status(run_id, branch, defaults.FAIL)
        except MagnusError:  # not recorded yet: nothing to end
            logger.debug("step %s interrupted before it was recorded", name, exc_info=True)

    def run_branch(self, run: BranchRun) -> str:
        """Walk one branch of a composite step (what executors schedule); its ending status."""
        status = self.walk(run.graph, run.map_variable)
        self.events.branch_ended(run.name, status)
        return status

    def execute_node(self, node: "BaseNode", map_variable: defaults.TypeMapVariable = None) -> str:
        """Run one node of the graph being walked and return its step's status."""
        services = self.services
        name = node.step_log_name(map_variable)
        reused = self._reusable_step_log(node, name)
        if reused is not None:
            self._store.add_step_log(services.run_id, reused)
            self.events.step_ended(name, node.node_type, map_variable, reused.status, 0.0, reused.message, reused=True)
            return reused.status

        step_log = new_step_log(node, name, services)
        if node.is_terminal:
            self.end_branch(node, map_variable, step_log)
            return step_log.status
        step_log.status = defaults.PROCESSING  # a mark of work in progress, and of a crash mid-step
        self._store.add_step_log(services.run_id, step_log)
        if not isinstance(node, (CompositeNode, ExecutableNode)) or self.launcher is None:
            raise MagnusError(f"step '{node.internal_name}' of type {node.node_type} cannot be run")
        self._started[name] = started = time.monotonic()
        self.events.step_started(name, node.node_type, map_variable)
        if isinstance(node, CompositeNode):
            finished = self._run_composite(node, map_variable)
        else:  # None from run_step: it ran elsewhere and recorded itself
            finished = self.launcher.run_step(services, node, map_variable, step_log) or self._store.get_step_log(
                services.run_id, name
            )
        del self._started[name]
        seconds = time.monotonic() - started
        self.events.step_ended(name, node.node_type, map_variable, finished.status, seconds, finished.message)
        return str(finished.status)

    def end_branch(self, node: "BaseNode", map_variable: defaults.TypeMapVariable, step_log: StepLog) -> None:
        """A terminal node: its branch ends with ``node.ends_with``; the node itself succeeded.

        At the top of the pipeline the run's status is left to whoever ends the run (written once).
        """
        attempt = StepAttempt(status=defaults.SUCCESS, start_time=now(), attempt_number=1)
        branch = node.branch_log_name(map_variable)
        if branch:
            self._store.update_branch_log_status(self.services.run_id, branch, node.ends_with)
        attempt.end_time = now()
        attempt.duration = duration(attempt.start_time, attempt.end_time)
        step_log.attempts = [attempt]
        step_log.status = defaults.SUCCESS
        self._store.add_step_log(self.services.run_id, step_log)

    def _reusable_step_log(self, node: "BaseNode", name: str) -> Optional[StepLog]:
        """With ``--use-cached``: the old run's log of this step when it succeeded there."""
        services = self.services
        if not services.original_run_id or node.is_terminal:
            return None
        try:
            old, _ = services.original_run_log.search_step_by_internal_name(name)
        except StepLogNotFoundError:
            return None
        if old.status != defaults.SUCCESS:
            return None
        reused = old.model_copy(deep=True)
        reused.mock = True
        reused.message = f"not executed: succeeded in run {services.original_run_id} (--use-cached)"
        return reused

    # ---- composites --------------------------------------------------------------------------------
    def _run_composite(self, node: CompositeNode, map_variable: defaults.TypeMapVariable) -> StepLog:
        try:
            runs = self.fan_out(node, map_variable)
        except MagnusError as exc:
            return self._settle(node, map_variable, defaults.FAIL, str(exc))
        assert self.launcher is not None
        self.events.branches_started(
            node.step_log_name(map_variable), len(runs), map_variable, dynamic=node.dynamic_branches
        )
        ended: List[str] = []  # the branches walked in this process, in the order they ended

        def run_branch(run: BranchRun) -> str:
            status = self.run_branch(run)
            ended.append(run.name)
            return status

        self.launcher.run_branches(self.services, runs, run_branch)
        return self.fan_in(node, map_variable, in_order=ended == [run.name for run in runs])

    def fan_out(self, node: CompositeNode, map_variable: defaults.TypeMapVariable) -> List[BranchRun]:
        """Record the branches a composite step is about to run; return them.

        Raises:
            MagnusError: the branches cannot be worked out (a map's list parameter is missing).
        """
        services = self.services
        parameters = self._store.get_parameters(services.run_id) if node.dynamic_branches else {}
        runs = node.branch_runs(parameters, map_variable)
        for run in runs:
            self._store.add_branch_log(services.run_id, BranchLog(internal_name=run.name, status=defaults.PROCESSING))
        return runs

    def fan_in(self, node: CompositeNode, map_variable: defaults.TypeMapVariable, in_order: bool = False) -> StepLog:
        """Settle a composite step from its branches: one read of their statuses, one write of its own.

        A step whose branches' outputs are merged at fan-in (a map, unless its iterations ran in
        turn here, ``in_order``, and it has no reducer) reads its branches' steps instead, and
        sets the parameters it combines from them, in branch order.
        """
        name = node.step_log_name(map_variable)
        run_id = self.services.run_id
        if node.merges_at_fan_in(in_order):
            from magnus.runtime.outputs import branches_outputs

            step_log = self._store.get_step_log(run_id, name)
            statuses = {branch: log.status for branch, log in step_log.branches.items()}
            combined = node.combine_outputs(branches_outputs(step_log, node))
            if combined:
                self._store.set_parameters(run_id, combined)
        else:
            statuses = self._store.get_branch_statuses(run_id, name)
        failed = [branch for branch, status in statuses.items() if status != defaults.SUCCESS]
        self.events.composite_ended(name, len(statuses), len(failed))
        if failed:
            message = f"branches that did not succeed: {', '.join(failed)}"
            return self._settle(node, map_variable, defaults.FAIL, message)
        # Walked again by an engine although it succeeded in the run resumed: it says so, as when reused whole.
        reused = self._reusable_step_log(node, name)
        return self._settle(node, map_variable, defaults.SUCCESS, reused.message if reused else "")

    def _settle(
        self, node: CompositeNode, map_variable: defaults.TypeMapVariable, status: str, message: str
    ) -> StepLog:
        step_log: StepLog = self._store.update_step_log_status(
            self.services.run_id, node.step_log_name(map_variable), status, message
        )
        return step_log

    # ---- one step of a run walked elsewhere -------------------------------------------------------
    def execute_request(self, node: "BaseNode", request: "StepRequest") -> str:
        """Do what ``request`` asks in this process (a container, pod or job); return the step's status.

        The run log is created when no step has created it yet (the first pod of a run). A
        request for a branch walks it here, its steps launched by this orchestrator's launcher,
        and returns the status the branch ended with. A terminal node at the top of the
        pipeline ends the run; a fan-out with an iterations file writes its branches' map
        variables there. With ``use_cached``, a step that succeeded in the run resumed is
        recorded as reused, not run; the attempts of a step an engine launched again
        (``retry``) are numbered after the earlier launches'.

        Raises:
            UserInputError: the request does not fit the node (a fan of a task, a task as a fan).
        """
        services = self.services
        map_variable = request.map_values()
        self.ensure_run_log()
        if request.branch:
            if not isinstance(node, CompositeNode):
                raise UserInputError(f"step '{request.step}' is a {node.node_type}, not a parallel, map or dag step")
            return self._walk_branch_here(node, map_variable, request.branch)
        if request.fan:
            if not isinstance(node, CompositeNode):
                raise UserInputError(f"step '{request.step}' is a {node.node_type}, not a parallel, map or dag step")
            if request.fan == "in":
                return str(self.fan_in(node, map_variable).status)
            return self._fan_out_here(node, map_variable, request.iterations_file)
        if node.is_composite:
            raise UserInputError(f"step '{request.step}' is a {node.node_type}: run its branches with 'magnus fan'")
        if node.is_terminal:
            step_log = new_step_log(node, node.step_log_name(map_variable), services)
            self.end_branch(node, map_variable, step_log)
            if not node.branch_log_name(map_variable):  # the run ends here, in a process that did not start it
                self._store.update_run_log_status(services.run_id, node.ends_with)
                services.experiment_tracker.start_run(services.run_id, services.tag)
                services.experiment_tracker.end_run(node.ends_with)
            return node.ends_with
        if not isinstance(node, ExecutableNode):
            raise UserInputError(f"step '{request.step}' of type {node.node_type} cannot be run on its own")
        reused = self._reusable_step_log(node, node.step_log_name(map_variable))
        if reused is not None:
            self._store.add_step_log(services.run_id, reused)
            return str(reused.status)
        return str(StepRunner(services).run(node, map_variable, retry=request.retry_number()).status)

    def _walk_branch_here(self, node: CompositeNode, map_variable: defaults.TypeMapVariable, branch: str) -> str:
        """Walk ``node``'s branch named ``branch`` (as in the pipeline) at ``map_variable``.

        The process walking the run fanned the step out already (the branch logs exist).
        """
        graphs = {graph.internal_branch_name: graph for graph in node.get_branches()}
        if branch not in graphs:
            known = ", ".join(graphs) or "none"
            raise UserInputError(f"step '{node.internal_name}' has no branch '{branch}' (known: {known})")
        graph = graphs[branch]
        return self.run_branch(BranchRun(resolve_map_placeholders(branch, map_variable), graph, map_variable))

    def ensure_run_log(self) -> None:
        """Create the run log unless a process of the run did; of two at once, one creates it, both go on.

        It begins as a run walked here does (:meth:`begin_run`): a resumed run carries the
        parameters of the run it resumes, whose catalog is made available.
        """
        if self._store.run_log_exists(self.services.run_id):
            return
        try:
            self.begin_run()
        except RunLogExistsError:
            pass  # another step's process claimed it first: it records the parameters and config

    def _fan_out_here(self, node: CompositeNode, map_variable: defaults.TypeMapVariable, iterations_file: str) -> str:
        services = self.services
        name = node.step_log_name(map_variable)
        try:
            self._store.get_step_log(services.run_id, name)
        except StepLogNotFoundError:
            step_log = new_step_log(node, name, services)
            step_log.status = defaults.PROCESSING
            self._store.add_step_log(services.run_id, step_log)
        try:
            runs = self.fan_out(node, map_variable)
        except MagnusError as exc:
            return str(self._settle(node, map_variable, defaults.FAIL, str(exc)).status)
        if iterations_file:
            iterations = [json.dumps(run.map_variable) for run in runs]
            Path(iterations_file).write_text(json.dumps(iterations))
        return defaults.PROCESSING

"""Doing one unit of a run from its launch request, in the process the request started.

What a container, a pod, a SLURM job or a Ray task does with the request it was given: run a step,
fan a composite out (writing its branches' map positions for an engine that fans out itself) or in,
or walk one branch with its steps here. Each kind is recorded by the same code as when the walking
process does it (:class:`~magnus.runtime.units.UnitRecords`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from magnus import defaults
from magnus.errors import BranchLogNotFoundError, StepLogNotFoundError, UserInputError
from magnus.map_position import position_json
from magnus.nodes.base import ExecutableNode, internal_name_in, resolve_map_placeholders
from magnus.nodes.composite import CompositeNode
from magnus.object_store import write_text
from magnus.runtime.request import (
    FanIn,
    FanOut,
    LaunchRequest,
    NextIteration,
    RunStep,
    WalkBranch,
    without_double_braces,
)
from magnus.runtime.signals import sigterm_interrupts
from magnus.runtime.step import StepRunner
from magnus.runtime.units import UnitRecords

if TYPE_CHECKING:
    from magnus.nodes.base import BaseNode
    from magnus.runtime.handler import StepHandler
    from magnus.runtime.services import RunServices


def do_request(services: "RunServices", node: "BaseNode", request: LaunchRequest, handler: "StepHandler") -> str:
    """Do what ``request`` asks of ``node``; the unit's status (``PROCESSING`` for a fan-out that succeeded).

    A branch walked here has its steps launched by ``handler``. With ``use_cached``, a step that
    succeeded in the run resumed is recorded as reused, not run; the attempts of a step an engine
    launched again (``retry``) are numbered after the earlier launches'.

    Raises:
        UserInputError: the request does not fit the node (a fan of a task, a task as a fan), or the
            run as recorded (a position its map never had, a run that ended, a step that succeeded).
    """
    _check_fits(node, request)
    records = UnitRecords(services)
    map_variable = request.map_values()
    with sigterm_interrupts():
        records.ensure_run_log()
        _check_belongs_to_run(services, node, request, map_variable)
        if isinstance(request, (WalkBranch, FanOut, FanIn, NextIteration)):
            assert isinstance(node, CompositeNode)
            if isinstance(request, NextIteration):
                following = records.next_iteration(node, map_variable)
                if request.iterations_file:
                    iterations = [] if following is None else [_for_engine(following.map_variable)]
                    write_text(request.iterations_file, json.dumps(iterations))
                return defaults.PROCESSING
            if isinstance(request, WalkBranch):
                from magnus.runtime.orchestrator import Orchestrator

                return Orchestrator(services, handler).walk_branch(node, map_variable, request.branch)
            if isinstance(request, FanIn):
                return records.fan_in(node, map_variable)[0].status
            step_log, runs = records.fan_out(node, map_variable)
            if step_log.status == defaults.FAIL:
                return defaults.FAIL
            if request.iterations_file and node.chooses_branch:  # the label of the branch chosen
                write_text(request.iterations_file, runs[0].name.rsplit(".", 1)[-1])
            elif request.iterations_file:
                iterations = [_for_engine(run.map_variable) for run in runs]
                write_text(request.iterations_file, json.dumps(iterations))
            return defaults.PROCESSING
        assert isinstance(request, RunStep)
        return _run_step(services, records, node, map_variable, request)


def _for_engine(map_variable: "defaults.TypeMapVariable") -> str:
    """A map position as an engine iterates over it: engines fill {{...}} in what they iterate over,
    so no map value may read as a placeholder."""
    return without_double_braces(position_json(map_variable))


def _check_fits(node: "BaseNode", request: LaunchRequest) -> None:
    """Refuse a request that does not fit its node (a fan of a task, a task as a fan), or a bad ``--retry``.

    Raises:
        UserInputError: the request does not fit the node.
    """
    if isinstance(request, (WalkBranch, FanOut, FanIn, NextIteration)):
        if not isinstance(node, CompositeNode):
            raise UserInputError(f"step '{request.step}' is a {node.node_type}, not a composite step")
        if isinstance(request, NextIteration) and not node.iterates:
            raise UserInputError(f"step '{request.step}' is a {node.node_type}, not a loop: it has no next iteration")
        return
    assert isinstance(request, RunStep)
    if node.is_composite:
        raise UserInputError(f"step '{request.step}' is a {node.node_type}: run its branches with 'magnus fan'")
    if not node.is_terminal and not isinstance(node, ExecutableNode):
        raise UserInputError(f"step '{request.step}' of type {node.node_type} cannot be run on its own")
    request.retry_number()


def _check_belongs_to_run(
    services: "RunServices", node: "BaseNode", request: LaunchRequest, map_variable: "defaults.TypeMapVariable"
) -> None:
    """Refuse, before any user code runs, a launch the run's walk would never make.

    The run must still be going on; a step or branch inside a map must be at a position the map
    fanned out to (its branch recorded and not ended); a step must not have succeeded already.

    Raises:
        UserInputError: the launch does not belong to the run as recorded.
    """
    store, run_id = services.run_log_store, services.run_id
    status = store.get_run_log_by_id(run_id, full=False).status
    if status in (defaults.SUCCESS, defaults.FAIL):
        raise UserInputError(f"run '{run_id}' has ended {status}: its steps are not launched again")
    positioned = request.branch if isinstance(request, WalkBranch) else node.internal_name
    placeholders = positioned.count(defaults.MAP_PLACEHOLDER)
    if len(map_variable or {}) != placeholders:
        raise UserInputError(
            f"--map-variable: step '{request.step}' is inside {placeholders} map(s), "
            f"got {len(map_variable or {})} map value(s)"
        )
    branch = node.branch_log_name(map_variable) if isinstance(request, (RunStep, FanOut, NextIteration)) else ""
    if isinstance(request, WalkBranch):
        branch = resolve_map_placeholders(request.branch, map_variable)
    if branch:
        try:
            recorded = store.get_branch_status(run_id, branch)
        except BranchLogNotFoundError:
            raise UserInputError(f"run '{run_id}' has no branch '{branch}': its step did not fan out to it") from None
        if recorded in (defaults.SUCCESS, defaults.FAIL):
            raise UserInputError(f"branch '{branch}' of run '{run_id}' has ended {recorded}")
    if isinstance(request, RunStep) and node.is_executable:
        try:
            step_status = store.get_step_log(run_id, node.step_log_name(map_variable)).status
        except StepLogNotFoundError:
            return
        if step_status == defaults.SUCCESS:
            raise UserInputError(f"step '{node.step_log_name(map_variable)}' of run '{run_id}' already succeeded")


def _run_step(
    services: "RunServices",
    records: UnitRecords,
    node: "BaseNode",
    map_variable: "defaults.TypeMapVariable",
    request: RunStep,
) -> str:
    if node.is_terminal:
        status = records.end_branch(node, map_variable)
        if not node.branch_log_name(map_variable):  # the run ends here, in a process that did not start it
            records.start_tracking()
            records.end_run(status)
        return status
    assert isinstance(node, ExecutableNode)
    retry = request.retry_number()
    end = _end_after(services, node) if request.then_end else None
    reused = records.reused(node, node.step_log_name(map_variable))
    if reused is not None:
        services.run_log_store.add_step_log(services.run_id, reused)
        status = reused.status
    else:
        status = StepRunner(services).run(node, map_variable, retry=retry).status
    if end is None or status != defaults.SUCCESS:
        return status
    return _run_step(services, records, end, map_variable, RunStep(run=request.run, step=end.internal_name))


def _end_after(services: "RunServices", node: "BaseNode") -> "BaseNode":
    """The success node ``--then-end`` records after ``node``: the node that follows it in its dag.

    Raises:
        UserInputError: what follows ``node`` is not its dag's success node.
    """
    name = node.get_next_node()
    following = services.pipeline.graph.find_node(internal_name_in(node.internal_branch_name, name))
    if following.is_terminal and following.ends_with == defaults.SUCCESS:
        return following
    raise UserInputError(f"--then-end: step '{node.internal_name}' is followed by '{name}', not its dag's success node")

"""Doing one unit of a run from its launch request, in the process the request started.

What a container, a pod, a SLURM job or a Ray task does with the request it was given: run a step,
fan a composite out (writing its branches' map positions for an engine that fans out itself) or in,
or walk one branch with its steps here. Each kind is recorded by the same code as when the walking
process does it (:class:`~magnus.runtime.units.UnitRecords`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from magnus import defaults
from magnus.errors import UserInputError
from magnus.nodes.base import ExecutableNode
from magnus.nodes.composite import CompositeNode
from magnus.runtime.request import FanIn, FanOut, LaunchRequest, RunStep, WalkBranch
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
        UserInputError: the request does not fit the node (a fan of a task, a task as a fan).
    """
    records = UnitRecords(services)
    map_variable = request.map_values()
    with sigterm_interrupts():
        records.ensure_run_log()
        if isinstance(request, (WalkBranch, FanOut, FanIn)):
            if not isinstance(node, CompositeNode):
                raise UserInputError(f"step '{request.step}' is a {node.node_type}, not a parallel, map or dag step")
            if isinstance(request, WalkBranch):
                from magnus.runtime.orchestrator import Orchestrator

                return Orchestrator(services, handler).walk_branch(node, map_variable, request.branch)
            if isinstance(request, FanIn):
                return records.fan_in(node, map_variable)[0].status
            step_log, runs = records.fan_out(node, map_variable)
            if step_log.status == defaults.FAIL:
                return defaults.FAIL
            if request.iterations_file:
                iterations = [json.dumps(run.map_variable) for run in runs]
                Path(request.iterations_file).write_text(json.dumps(iterations))
            return defaults.PROCESSING
        assert isinstance(request, RunStep)
        return _run_step(services, records, node, map_variable, request)


def _run_step(
    services: "RunServices",
    records: UnitRecords,
    node: "BaseNode",
    map_variable: "defaults.TypeMapVariable",
    request: RunStep,
) -> str:
    if node.is_composite:
        raise UserInputError(f"step '{request.step}' is a {node.node_type}: run its branches with 'magnus fan'")
    if node.is_terminal:
        status = records.end_branch(node, map_variable)
        if not node.branch_log_name(map_variable):  # the run ends here, in a process that did not start it
            services.experiment_tracker.start_run(services.run_id, services.tag)
            records.end_run(status)
        return status
    if not isinstance(node, ExecutableNode):
        raise UserInputError(f"step '{request.step}' of type {node.node_type} cannot be run on its own")
    retry = request.retry_number()
    reused = records.reused(node, node.step_log_name(map_variable))
    if reused is not None:
        services.run_log_store.add_step_log(services.run_id, reused)
        return reused.status
    return StepRunner(services).run(node, map_variable, retry=retry).status

"""Doing units of a run walked elsewhere, in a process an engine launched: a pod, a job, a Ray worker.

``magnus execute_single_node``, ``fan`` and ``execute_branch`` do one unit each
([`execute_request`][]). A process that outlives its unit and is handed more of the same run (a
Ray worker) reads the run once ([`request_services`][]) and passes what it read to each of them:
the per-run work (pipeline, configuration, plugins, parameters file) is not done per step.
Executors may call this module; they may not call the composition of a whole run (``entrypoints``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from magnus import integration
from magnus.entrypoints import compose, load_pipeline
from magnus.executor.local import LocalExecutor

if TYPE_CHECKING:
    from magnus.runtime.request import LaunchRequest
    from magnus.runtime.services import Pipeline, RunOptions, RunServices


def execute_request(request: "LaunchRequest", services: Optional["RunServices"] = None) -> str:
    """Do what ``request`` asks here; the unit's status.

    The run log is created when no process of the run has created it yet (the first pod of a run).
    ``services`` are the run's as [`request_services`][] read them for an earlier request of the
    same run in this process; by default they are read now.
    """
    from magnus.runtime.remote import do_request

    if services is None:
        pipeline = load_pipeline(request.run.pipeline_file)
        node = pipeline.graph.find_node(request.step)  # an unknown step is refused before anything is composed
        services = request_services(request.run, pipeline)
    else:
        node = services.pipeline.graph.find_node(request.step)
    # A branch walked here runs its steps here, in turn, whatever executor walks the run.
    return do_request(services, node, request, LocalExecutor())


def request_services(run: "RunOptions", pipeline: Optional["Pipeline"] = None) -> "RunServices":
    """The pipeline and services of ``run`` for a process doing its units, read once for any number
    of them (``pipeline`` when it was read already)."""
    executor, services = compose(pipeline or load_pipeline(run.pipeline_file), run)
    for service in services.services().values():
        integration.configure_for_execution(executor, service)
    return services


__all__ = ["execute_request", "request_services"]

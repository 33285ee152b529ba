"""What a Ray task does in its worker: one unit of a run, from its launch request, in that worker process.

The unit is done by core's in-process entry for a request
([`execute_request`][magnus.launched.execute_request]), as ``magnus execute_single_node``
would do it, without starting a process per step. Ray gives a job's tasks to the same few worker
processes, so the per-run work (pipeline, configuration, plugins, parameters file) is done once per
worker and run ([`request_services`][magnus.launched.request_services]), not once per step.

Ray's worker runs the task in its main thread: the step's Ctrl-C handling works there, and
``ray.cancel`` interrupts the step as Ctrl-C would (the step records ``interrupted``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Tuple

from magnus.errors import MagnusError
from magnus.launched import execute_request, request_services
from magnus.runtime.environment import launch_variables

if TYPE_CHECKING:
    from magnus.runtime.request import LaunchRequest
    from magnus.runtime.services import RunOptions, RunServices

# The services of the run this worker is doing units of, by the run's options and the folder.
_kept: Dict[Tuple["RunOptions", str], "RunServices"] = {}


class Done(NamedTuple):
    """What a task answers of a unit: its status, or ('' and) why it could not be done; the node it ran
    on; how long it took there."""

    status: str
    problem: str
    node_id: str
    seconds: float = 0.0


def do_unit(request: "LaunchRequest", folder: str) -> Done:
    """Do ``request`` in this worker, in ``folder`` ('' where the worker stands: a runtime_env's working_dir).

    A unit refused (a step that succeeded already, a run that ended) or whose services cannot
    start answers why, for the walk to record. A step's own failure is its status (``FAIL``).
    """
    import ray

    started = time.perf_counter()
    node_id = str(ray.get_runtime_context().get_node_id())
    if folder and os.getcwd() != folder:
        os.chdir(folder)
    try:
        services = _services(request.run, node_id)
        with launch_variables(request.environment_variables()):
            status = execute_request(request, services)
    except MagnusError as exc:
        return Done("", f"{type(exc).__name__}: {exc}", node_id, time.perf_counter() - started)
    return Done(status, "", node_id, time.perf_counter() - started)


def do_units(requests: List["LaunchRequest"], folder: str) -> List[Done]:
    """Do each of ``requests`` in turn (the branches of one batch); what each answered.

    Ctrl-C (``ray.cancel``) ends the batch where it is: the unit it interrupted records it, those
    after it are not started.
    """
    return [do_unit(request, folder) for request in requests]


def _services(run: "RunOptions", node_id: str) -> "RunServices":
    """The run's services in this worker, read by the first of its units here.

    The steps this worker runs name its Ray node in their code identity (``ray_node_id``): their logs
    were recorded by the walk, in the driver.
    """
    key = (run, os.getcwd())
    services = _kept.get(key)
    if services is None:
        _kept.clear()  # a worker serves one job: an earlier run's services are not needed again
        services = _kept[key] = dataclasses.replace(request_services(run), runs_on={"ray_node_id": node_id})
    return services

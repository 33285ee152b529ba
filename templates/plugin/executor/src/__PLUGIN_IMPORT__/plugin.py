"""``executor: {type: __PLUGIN_NAME__}``: every step in a python process of its own.

A working skeleton of an executor whose steps run elsewhere. magnus walks the graph in this
process; for each step the executor starts the command line a
:class:`~magnus.runtime.request.StepRequest` renders (``python -m magnus execute_single_node
RUN_ID PIPELINE STEP -c CONFIG ...``) and waits. That process reads the pipeline, configuration
and parameters files, runs the step and writes its step log to the run log store, where the walk
reads it back. Replace the subprocess with what your engine offers (a container, a batch job, a
pod) and keep the rest.

Steps running in other processes need services those processes share (``run_log_store:
{type: file-system}``; magnus refuses the in-memory default) and the configuration file (``-c``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Dict, Optional

from magnus import defaults
from magnus.executor.base import WalkingExecutor
from pydantic import Field

if TYPE_CHECKING:
    from magnus.datastore.models import StepLog
    from magnus.nodes.base import ExecutableNode
    from magnus.runtime.services import RunServices


class __PLUGIN_CLASS__(WalkingExecutor):
    """Runs each step in a python process of its own, one after another."""

    service_name: ClassVar[str] = "__PLUGIN_NAME__"
    runs_steps_elsewhere: ClassVar[bool] = True

    environment: Dict[str, str] = Field(
        default_factory=dict, description="Variables added to the environment of every step's process."
    )

    def check(self, services: "RunServices") -> None:
        """Refuse a run without a configuration file before anything runs: the steps' processes read it."""
        self.step_configuration_file(services)

    def run_step(
        self,
        services: "RunServices",
        node: "ExecutableNode",
        map_variable: defaults.TypeMapVariable,
        step_log: "StepLog",
    ) -> Optional["StepLog"]:
        """In a new python process; it records the step itself, so this returns None."""
        # A pipeline built with the SDK is written to a file the step's process can read.
        pipeline_file = self.step_pipeline_file(services, Path(".magnus") / f"{services.run_id}-pipeline.yaml")
        request = self.step_request(services, node, map_variable, pipeline_file=pipeline_file)
        # The step's output goes straight to ours; the process masks secrets in it itself.
        finished = subprocess.run(
            request.to_argv(program=(sys.executable, "-m", "magnus")),
            env={**os.environ, **self.environment},
            check=False,
        )
        if finished.returncode != 0:
            self._fail_if_unrecorded(services, step_log, finished.returncode)
        return None

    @staticmethod
    def _fail_if_unrecorded(services: "RunServices", step_log: "StepLog", returncode: int) -> None:
        """A process that died before recording its step (killed, no magnus there): the step failed.

        A step that failed normally exits non-zero too, having recorded why: that is kept.
        """
        store = services.run_log_store
        recorded = store.get_step_log(step_log.internal_name, services.run_id)
        if recorded.status == defaults.PROCESSING:
            recorded.status = defaults.FAIL
            recorded.message = f"the step's process exited with status {returncode} before recording the step"
            store.add_step_log(recorded, services.run_id)

"""``experiment_tracker: {type: wandb, config: {project, entity, mode, tags, dir}}``.

W&B runs are grouped by magnus run: each magnus run is a W&B *group* named by its run id, holding

- one W&B run for the run itself (``job_type: run``, named by the run id): the run's parameters,
  run id and tag as its config, the run's tags (``tags`` and the ``--tag``), and the run's status
  in its summary (``magnus.status``) when it ends;
- one W&B run for each step that tracked something (``job_type: step``, named by the step's
  internal name, ``fan.2.work`` for a map item): its metrics, its parameters as config, and its
  status and duration in its summary when it ends (exit code 0 for SUCCESS, 1 otherwise).

A run per step rather than one per magnus run because a W&B run is written by one process:
steps run in worker processes, containers and pods, each of which opens its own, and a map's
items become separate series side by side. Steps that track nothing make no W&B run.

``track_this`` numbers are logged with magnus's ``step`` as the x-axis (``magnus_step``, set by
``define_metric``), not W&B's own step, which must only grow: two metrics tracked at steps 0, 1, 2
each would otherwise lose the second's. Anything else updates the W&B run's config.

W&B's console capture is off (magnus captures and masks a step's output itself); secret values
reach the tracker masked as ``***``. wandb is imported on first use only.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, ContextManager, Dict, List, Literal, Optional

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.errors import NoRunContextError
from magnus.reach import Reach
from magnus.tracker import BaseExperimentTracker

if TYPE_CHECKING:
    from wandb.sdk.wandb_run import Run

STEP_METRIC = "magnus_step"
STATUS_KEY = "magnus.status"
DURATION_KEY = "magnus.duration_seconds"
RUN_ID_KEY = "magnus.run_id"
TAG_KEY = "magnus.tag"
STEP_KEY = "magnus.step"


class WandbExperimentTracker(BaseExperimentTracker):
    """Tracks to Weights & Biases: online, offline (files under ``dir``) or disabled."""

    service_name: ClassVar[str] = "wandb"

    project: str = Field(default="magnus", description="W&B project of the runs.")
    entity: Optional[str] = Field(default=None, description="W&B entity (team or user); W&B's default when unset.")
    mode: Literal["online", "offline", "disabled"] = Field(default="online", description="W&B's mode.")
    tags: List[str] = Field(default_factory=list, description="Tags of every W&B run (the run's --tag is added).")
    dir: str = Field(
        default="", description="Folder W&B writes its files in (its 'wandb' folder); W&B's default when ''."
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for W&B to start a run.")

    _run_id: str = PrivateAttr(default="")
    _tag: str = PrivateAttr(default="")
    _pid: int = PrivateAttr(default=0)
    _run: Optional["Run"] = PrivateAttr(default=None)
    _step: str = PrivateAttr(default="")
    _step_started: float = PrivateAttr(default=0.0)
    _step_run: Optional["Run"] = PrivateAttr(default=None)

    def reach(self) -> Reach:
        """Offline: this machine's folder (``dir``); online or disabled: anywhere."""
        return Reach.MACHINE if self.mode == "offline" else Reach.ANYWHERE

    def local_paths(self) -> List[str]:
        return [self.dir or "."] if self.mode == "offline" else []

    def state_paths(self) -> List[str]:
        return [os.path.join(self.dir or ".", "wandb")] if self.mode == "offline" else []

    @property
    def client_context(self) -> ContextManager[Any]:
        """The W&B run being tracked to (the step's, else the run's; None outside any) as the context's value."""
        import contextlib

        return contextlib.nullcontext(self._step_run or self._run)

    # ---- hooks ------------------------------------------------------------------------------------
    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        """Start the W&B run of the magnus run, its parameters, run id and tag as config."""
        self._attach(run_id, tag)
        self._run_run(parameters or {})

    def end_run(self, status: str) -> None:
        """The run's status in its summary; the W&B runs this process opened finish."""
        if self._step_run is not None:
            self._finish(self._step_run, status)
            self._step_run = None
        if self._run is not None:
            self._finish(self._run, status)
            self._run = None
        self._run_id = ""

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        """What is tracked from now on belongs to ``step`` (its W&B run starts on first use)."""
        self._attach(run_id, tag)
        self._step, self._step_started = step, time.monotonic()

    def end_step(self, step: str, status: str) -> None:
        """The step's status and duration in its W&B run's summary, which finishes."""
        if self._step != step:
            return
        if self._step_run is not None:
            self._step_run.summary[DURATION_KEY] = time.monotonic() - self._step_started
            self._finish(self._step_run, status)
            self._step_run = None
        self._step = ""

    # ---- what tasks track -------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """A point of series ``key`` at x ``step`` (``magnus_step``), in the step's W&B run."""
        self._target().log({key: value, STEP_METRIC: step})

    def log_parameter(self, key: str, value: Any) -> None:
        """A config value of the step's W&B run (of the run's, between steps)."""
        config: Any = self._target().config  # wandb's Config.update has no type hints
        config.update({key: value}, allow_val_change=True)

    # ---- the W&B runs -----------------------------------------------------------------------------
    def _attach(self, run_id: str, tag: str) -> None:
        """Track for ``run_id`` from now on; a forked process leaves its parent's W&B runs alone."""
        if self._pid != os.getpid():
            self._run, self._step_run, self._pid = None, None, os.getpid()
        if run_id != self._run_id:
            self._run_id, self._tag, self._step = run_id, tag, ""

    def _target(self) -> "Run":
        if not self._run_id:
            raise NoRunContextError("the wandb tracker tracks nothing outside a magnus run")
        self._attach(self._run_id, self._tag)
        if self._step:
            if self._step_run is None:
                config = {RUN_ID_KEY: self._run_id, TAG_KEY: self._tag, STEP_KEY: self._step}
                self._step_run = self._init(self._step, "step", config)
            return self._step_run
        return self._run_run({})

    def _run_run(self, parameters: Dict[str, Any]) -> "Run":
        """The W&B run of the magnus run in this process (started on first use)."""
        if self._run is None:
            self._run = self._init(self._run_id, "run", {**parameters, RUN_ID_KEY: self._run_id, TAG_KEY: self._tag})
        return self._run

    def _init(self, name: str, job_type: str, config: Dict[str, Any]) -> "Run":
        import wandb

        tags = [*self.tags, self._tag] if self._tag else list(self.tags)
        if self.dir:
            os.makedirs(self.dir, exist_ok=True)  # W&B writes to a temporary folder when it is missing
        settings = wandb.Settings(console="off", silent=True, init_timeout=self.timeout, save_code=False)
        run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            # absolute: W&B's service process, started once per process, has its own working folder
            dir=os.path.abspath(self.dir) if self.dir else None,
            group=self._run_id,
            job_type=job_type,
            name=name,
            tags=tags,
            config=config,
            reinit="create_new",
            settings=settings,
        )
        run.define_metric(STEP_METRIC, hidden=True)
        run.define_metric("*", step_metric=STEP_METRIC)
        return run

    @staticmethod
    def _finish(run: "Run", status: str) -> None:
        run.summary[STATUS_KEY] = status
        run.finish(exit_code=0 if status == defaults.SUCCESS else 1)

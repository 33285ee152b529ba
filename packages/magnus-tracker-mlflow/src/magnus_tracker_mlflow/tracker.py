"""``experiment_tracker: {type: mlflow, config: {server_url, autolog}}``.

One MLflow run per magnus run, in the experiment named by the run's tag (``Default`` without one),
as magnus 0.5.1 did. The MLflow run carries the tag ``magnus.run_id``, so every process of a run
(each container or pod) finds and reuses it. Each step that tracks something also gets a nested
MLflow run (tag ``magnus.step``), so metrics can be told apart by step, map iteration included.

The tracker learns which run and which step it tracks for only from its hooks: ``start_run`` in
the process that walks the run, ``start_step``/``end_step`` in the process that runs a step (the
same one, or a container or pod that never saw ``start_run``). It reads no global context.

Numbers are metrics (with their ``step``); anything else is a parameter. mlflow is imported on
first use only.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, ClassVar, ContextManager, Dict, Iterator, Optional

from pydantic import Field, PrivateAttr

from magnus import defaults
from magnus.errors import NoRunContextError
from magnus.tracker import BaseExperimentTracker

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUN_TAG = "magnus.run_id"
STEP_TAG = "magnus.step"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "Default"
_MAX_PARAM_LENGTH = 6000
_PARAM_BATCH = 100  # MLflow's limit of params in one log_batch


def mlflow_status(status: str) -> str:
    """The MLflow run status a magnus status ends a run with."""
    return "FINISHED" if status == defaults.SUCCESS else "FAILED"


class MLflowExperimentTracker(BaseExperimentTracker):
    """Tracks to an MLflow tracking server (or any MLflow tracking URI)."""

    service_name: ClassVar[str] = "mlflow"

    server_url: str = Field(description="MLflow tracking URI: http(s)://server, sqlite:///file.db, databricks, ...")
    autolog: bool = Field(default=False, description="Call mlflow.autolog() when the run starts.")
    experiment_name: str = Field(default="", description="MLflow experiment; default: the run's tag, else Default.")

    _client: Optional["MlflowClient"] = PrivateAttr(default=None)
    # The magnus run this tracker tracks for, as its hooks told it ('' before any hook).
    _run_id: str = PrivateAttr(default="")
    _tag: str = PrivateAttr(default="")
    _mlflow_run_id: str = PrivateAttr(default="")
    # The step running now in this process ('' between steps), and the nested MLflow runs of the
    # steps that tracked something and have not ended yet.
    _step: str = PrivateAttr(default="")
    _step_runs: Dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def client(self) -> "MlflowClient":
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.server_url)
        return self._client

    # ---- hooks ------------------------------------------------------------------------------------
    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        """Create (or find, in another process of the same run) the MLflow run; log the parameters."""
        self._attach(run_id, tag)
        mlflow_run = self._parent_run()
        if parameters:
            self._log_params(mlflow_run, parameters)
        if self.autolog:
            import mlflow

            mlflow.set_tracking_uri(self.server_url)
            mlflow.autolog(silent=True)

    def end_run(self, status: str) -> None:
        """End the MLflow run (and the nested runs of steps that never ended) with the run's status."""
        if self._mlflow_run_id:
            state = mlflow_status(status)
            for child in self._step_runs.values():
                self.client.set_terminated(child, state)
            self.client.set_terminated(self._mlflow_run_id, state)
        self._attach("", "")

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        """From now on what is tracked belongs to ``step``; its nested run is made on first use."""
        self._attach(run_id, tag)
        self._step = step

    def end_step(self, step: str, status: str) -> None:
        """End the nested run of ``step``, if it tracked anything, with the step's status."""
        child = self._step_runs.pop(step, "")
        if child:
            self.client.set_terminated(child, mlflow_status(status))
        if self._step == step:
            self._step = ""

    def _attach(self, run_id: str, tag: str) -> None:
        """Track for magnus run ``run_id`` from now on (forget everything of another run)."""
        if run_id == self._run_id:
            return
        self._run_id, self._tag = run_id, tag
        self._mlflow_run_id, self._step = "", ""
        self._step_runs = {}

    # ---- the MLflow runs --------------------------------------------------------------------------
    def _experiment_id(self) -> str:
        name = self.experiment_name or self._tag or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self.client.create_experiment(name))
        except Exception:  # another process of the run created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _parent_run(self) -> str:
        """The MLflow run of the magnus run: found (or created) on first use in each process.

        Raises:
            NoRunContextError: no hook told this tracker of a run.
        """
        if self._mlflow_run_id:
            return self._mlflow_run_id
        if not self._run_id:
            raise NoRunContextError("the mlflow tracker tracks nothing outside a magnus run")
        experiment_id = self._experiment_id()
        # The nested runs of steps carry the run's tag too, but start after the run's own.
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_TAG}` = '{self._run_id}'",
            max_results=10,
            order_by=["attributes.start_time ASC"],
        )
        parents = [run for run in found if STEP_TAG not in run.data.tags]
        if parents:
            self._mlflow_run_id = parents[0].info.run_id
        else:
            created = self.client.create_run(
                experiment_id, tags={RUN_TAG: self._run_id, "magnus.tag": self._tag}, run_name=self._run_id
            )
            self._mlflow_run_id = created.info.run_id
        return self._mlflow_run_id

    def _step_run(self) -> Optional[str]:
        """The nested MLflow run of the step running now (made on first use); None between steps."""
        if not self._step:
            return None
        if self._step not in self._step_runs:
            parent = self._parent_run()
            experiment_id = self.client.get_run(parent).info.experiment_id
            created = self.client.create_run(
                experiment_id,
                tags={PARENT_TAG: parent, STEP_TAG: self._step, RUN_TAG: self._run_id},
                run_name=self._step,
            )
            self._step_runs[self._step] = created.info.run_id
        return self._step_runs[self._step]

    # ---- what tasks track -------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """A metric of the run and, inside a step, of the step's nested run."""
        self.client.log_metric(self._parent_run(), key, value, step=step)
        step_run = self._step_run()
        if step_run:
            self.client.log_metric(step_run, key, value, step=step)

    def log_parameter(self, key: str, value: Any) -> None:
        """A parameter of the step's nested run (of the run, outside a step)."""
        target = self._step_run() or self._parent_run()
        self.client.log_param(target, key, _as_param(value))

    def _log_params(self, mlflow_run: str, parameters: Dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(key, _as_param(value)) for key, value in parameters.items()]
        for start in range(0, len(params), _PARAM_BATCH):
            self.client.log_batch(mlflow_run, params=params[start : start + _PARAM_BATCH])

    @property
    def client_context(self) -> ContextManager[Any]:
        """``mlflow`` itself, with the MLflow run of this magnus run active: ``mlflow.log_*`` work inside.

        Yields the active MLflow run, or None outside any magnus run (nothing to attach to).
        """
        return self._active_run()

    @contextlib.contextmanager
    def _active_run(self) -> Iterator[Any]:
        if not self._run_id:
            yield None
            return
        import mlflow

        parent = self._parent_run()
        mlflow.set_tracking_uri(self.server_url)
        try:
            with mlflow.start_run(run_id=parent) as active:
                yield active
        finally:
            # Leaving mlflow.start_run ends the run; the magnus run goes on until end_run.
            self.client.update_run(parent, status="RUNNING")


def _as_param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM_LENGTH]

"""``experiment_tracker: {type: mlflow, config: {server_url, autolog}}``.

One MLflow run per magnus run, in the experiment named by the run's tag (``Default`` without one),
as magnus 0.5.1 did. The MLflow run carries the tag ``magnus.run_id``, so every process of a run
(each container or pod) finds and reuses it. Each step that tracks something also gets a nested
MLflow run (tag ``magnus.step``), so metrics can be told apart by step, map iteration included.

Numbers are metrics (with their ``step``); anything else is a parameter. mlflow is imported on
first use only.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, ClassVar, ContextManager, Dict, Iterator, Optional

from pydantic import Field, PrivateAttr

from magnus import context as run_context
from magnus.tracker import BaseExperimentTracker

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUN_TAG = "magnus.run_id"
STEP_TAG = "magnus.step"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "Default"
_MAX_PARAM_LENGTH = 6000


class MLflowExperimentTracker(BaseExperimentTracker):
    """Tracks to an MLflow tracking server (or any MLflow tracking URI)."""

    service_name: ClassVar[str] = "mlflow"

    server_url: str = Field(description="MLflow tracking URI: http(s)://server, sqlite:///file.db, databricks, ...")
    autolog: bool = Field(default=False, description="Call mlflow.autolog() when the run starts.")
    experiment_name: str = Field(default="", description="MLflow experiment; default: the run's tag, else Default.")

    _client: Optional["MlflowClient"] = PrivateAttr(default=None)
    _mlflow_run_id: str = PrivateAttr(default="")
    _step_runs: Dict[str, str] = PrivateAttr(default_factory=dict)

    # ---- the MLflow run of this magnus run ------------------------------------------------------
    @property
    def client(self) -> "MlflowClient":
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.server_url)
        return self._client

    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        """Create (or find, in another process of the same run) the MLflow run; log the parameters."""
        mlflow_run = self._find_or_create(run_id, tag)
        if parameters:
            self._log_params(mlflow_run, parameters)
        if self.autolog:
            import mlflow

            mlflow.set_tracking_uri(self.server_url)
            mlflow.autolog(silent=True)

    def end_run(self, status: str) -> None:
        if not self._mlflow_run_id:
            return
        state = "FINISHED" if status == "SUCCESS" else "FAILED"
        for child in self._step_runs.values():
            self.client.set_terminated(child, state)
        self.client.set_terminated(self._mlflow_run_id, state)

    def _experiment_id(self, tag: str) -> str:
        name = self.experiment_name or tag or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self.client.create_experiment(name))
        except Exception:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _find_or_create(self, run_id: str, tag: str = "") -> str:
        if self._mlflow_run_id:
            return self._mlflow_run_id
        experiment_id = self._experiment_id(tag)
        found = self.client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run_id}'", max_results=1)
        if found:
            self._mlflow_run_id = found[0].info.run_id
        else:
            created = self.client.create_run(experiment_id, tags={RUN_TAG: run_id, "magnus.tag": tag}, run_name=run_id)
            self._mlflow_run_id = created.info.run_id
        return self._mlflow_run_id

    def _current_run(self) -> str:
        """The MLflow run of the magnus run in progress, found lazily by processes that did not start it."""
        if not self._mlflow_run_id:
            context = run_context.current()
            self._find_or_create(context.run_id, context.tag)
        return self._mlflow_run_id

    def _step_run(self) -> Optional[str]:
        """The nested MLflow run of the step running now, if a step is running."""
        context = run_context.run_context
        if context is None or context.current_step is None:
            return None
        step = context.current_step
        name = step.internal_name
        if name not in self._step_runs:
            parent = self._current_run()
            experiment_id = self.client.get_run(parent).info.experiment_id
            created = self.client.create_run(
                experiment_id, tags={PARENT_TAG: parent, STEP_TAG: name, RUN_TAG: context.run_id}, run_name=name
            )
            self._step_runs[name] = created.info.run_id
        return self._step_runs[name]

    # ---- what tasks track -------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.client.log_metric(self._current_run(), key, value, step=step)
        step_run = self._step_run()
        if step_run:
            self.client.log_metric(step_run, key, value, step=step)

    def log_parameter(self, key: str, value: Any) -> None:
        """A parameter of the step's nested run (of the run, outside a step)."""
        target = self._step_run() or self._current_run()
        self.client.log_param(target, key, _as_param(value))

    def _log_params(self, mlflow_run: str, parameters: Dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(key, _as_param(value)) for key, value in parameters.items()]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(mlflow_run, params=params[start : start + 100])

    @property
    def client_context(self) -> ContextManager[Any]:
        """``mlflow`` itself, with the run of this magnus run active: ``mlflow.log_*`` work inside."""
        return self._active_run()

    @contextlib.contextmanager
    def _active_run(self) -> Iterator[Any]:
        import mlflow

        mlflow.set_tracking_uri(self.server_url)
        if not self._mlflow_run_id and run_context.run_context is None:
            yield None  # outside any magnus run there is no MLflow run to attach to
            return
        with mlflow.start_run(run_id=self._current_run()) as active:
            yield active


def _as_param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM_LENGTH]

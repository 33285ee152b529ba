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

``server_url`` is checked when the config is read (``http(s)://host``, ``file:``, a database URI
such as ``sqlite:///mlflow.db``, ``databricks``). Every call to MLflow made by this tracker, and by
tasks inside :attr:`~MLflowExperimentTracker.client_context`, gives up within about ``timeout``
seconds (MLflow's own retries last four minutes), and a failure is one line naming the URL.

A password in ``server_url`` (``https://user:pw@host``, ``postgresql://u:pw@h/db``, ``?password=``)
is shown as ``***`` by the summary the run log records and by every message (core's
:func:`magnus.credentials.redacted_url`); a URI parsers would read differently (an unencoded ``@``
in the password) is refused when the config is read, without being shown.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from typing import TYPE_CHECKING, Any, ClassVar, ContextManager, Dict, Iterator, Optional
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from magnus import defaults
from magnus.credentials import hidden_in, redacted_url, unparseable, url_credentials, url_problem
from magnus.errors import MagnusError, NoRunContextError
from magnus.tracker import BaseExperimentTracker

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUN_TAG = "magnus.run_id"
STEP_TAG = "magnus.step"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "Default"
_MAX_PARAM_LENGTH = 6000
_PARAM_BATCH = 100  # MLflow's limit of params in one log_batch


# The URI schemes MLflow tracks to: a server, a folder, a database (SQLAlchemy's dialect[+driver]).
_SERVER_SCHEMES = ("http", "https")
_OTHER_SCHEMES = ("file", "databricks", "databricks-uc", "uc", "sqlite", "postgresql", "mysql", "mssql")


class TrackerUnavailableError(MagnusError):
    """MLflow could not be reached, or refused a call, within the tracker's time bound."""


def tracking_uri_problem(uri: str) -> str:
    """Why ``uri`` is not an MLflow tracking URI, or ``''``."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower().split("+")[0]
    if scheme in _SERVER_SCHEMES:
        return "" if parts.hostname else "names no host"
    if scheme in _OTHER_SCHEMES or uri.strip() == "databricks":
        return ""
    return (
        "is not an MLflow tracking URI (expected http(s)://host[:port], file:/folder, "
        "sqlite:///mlflow.db, postgresql://..., databricks)"
    )


def bounded_environment(timeout: float) -> Dict[str, str]:
    """MLflow's HTTP settings for calls that give up within about ``timeout`` seconds in all.

    Three tries (two retries) with one back-off of 2 s, each try waiting at most a third of what is
    left: a refused connection fails in about 2 s, a silent host in about ``timeout``.
    """
    backoff_factor, retries = 1, 2  # MLflow reads the factor as an integer
    sleeping = backoff_factor * 2  # urllib3: no sleep before the first retry, factor * 2 ** (n - 1) before retry n
    per_try = max(1, int((timeout - sleeping) / (retries + 1)))  # whole seconds, as MLflow reads it
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(backoff_factor),
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(per_try),
    }


@contextlib.contextmanager
def bounded_calls(server_url: str, timeout: float) -> Iterator[None]:
    """Within the block, MLflow gives up within about ``timeout`` s; its failures name ``server_url``.

    MLflow reads its HTTP settings from the environment on every call: they are set for the block
    only (a variable the user set already wins) and restored after it. When ``server_url`` holds a
    password, MLflow's "View run at <url>" lines are not printed (they would show it).
    """
    wanted = bounded_environment(timeout)
    if url_credentials(server_url):  # MLflow prints run links made of the URL, password included
        wanted["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    settings = {key: value for key, value in wanted.items() if key not in os.environ}
    os.environ.update(settings)
    # urllib3 logs each retry as a warning: the error raised says what happened, in one line.
    retries_log = logging.getLogger("urllib3.connectionpool")
    level = retries_log.level
    retries_log.setLevel(logging.ERROR)
    try:
        yield
    except MagnusError:
        raise
    except Exception as exc:
        reason = hidden_in(_reason(exc, timeout), url_credentials(server_url))
        raise TrackerUnavailableError(f"experiment_tracker: MLflow at {redacted_url(server_url)}: {reason}") from exc
    finally:
        retries_log.setLevel(level)
        for key in settings:
            os.environ.pop(key, None)


def _reason(exc: Exception, timeout: float) -> str:
    """What went wrong in a few words (MLflow's messages hold whole URLs and exception reprs)."""
    text = " ".join(str(exc).split())
    if "filesystem tracking backend" in text:  # MLflow 3 refuses file: stores unless told
        return (
            "this MLflow keeps its file store read-only: use a database (server_url: sqlite:///mlflow.db; "
            "`mlflow migrate-filestore` moves existing runs), or set MLFLOW_ALLOW_FILE_STORE=true"
        )
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower() or "Timeout" in text:
        return f"no answer within {timeout:g} s"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    return text[:300] or type(exc).__name__


class _BoundedClient:
    """An ``MlflowClient`` whose every call is made within :func:`bounded_calls`."""

    def __init__(self, client: "MlflowClient", server_url: str, timeout: float) -> None:
        self._client, self._server_url, self._timeout = client, server_url, timeout

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            with bounded_calls(self._server_url, self._timeout):
                return attribute(*args, **kwargs)

        return bounded


def mlflow_status(status: str) -> str:
    """The MLflow run status a magnus status ends a run with."""
    return "FINISHED" if status == defaults.SUCCESS else "FAILED"


class MLflowExperimentTracker(BaseExperimentTracker):
    """Tracks to an MLflow tracking server (or any MLflow tracking URI)."""

    service_name: ClassVar[str] = "mlflow"
    # A refused server_url is never quoted back (it may hold a password).
    model_config = ConfigDict(hide_input_in_errors=True)

    server_url: str = Field(description="MLflow tracking URI: http(s)://server, sqlite:///file.db, databricks, ...")
    autolog: bool = Field(default=False, description="Call mlflow.autolog() when the run starts.")
    experiment_name: str = Field(default="", description="MLflow experiment; default: the run's tag, else Default.")
    timeout: float = Field(
        default=10.0, gt=0, description="Seconds after which a call to MLflow gives up (retries included)."
    )

    _client: Optional["MlflowClient"] = PrivateAttr(default=None)
    # The magnus run this tracker tracks for, as its hooks told it ('' before any hook).
    _run_id: str = PrivateAttr(default="")
    _tag: str = PrivateAttr(default="")
    _mlflow_run_id: str = PrivateAttr(default="")
    # The step running now in this process ('' between steps), and the nested MLflow runs of the
    # steps that tracked something and have not ended yet.
    _step: str = PrivateAttr(default="")
    _step_runs: Dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("server_url")
    @classmethod
    def _is_a_tracking_uri(cls, server_url: str) -> str:
        unreadable = url_problem(server_url)
        if unreadable:
            raise ValueError(unparseable(unreadable))
        problem = tracking_uri_problem(server_url)
        if problem:
            raise ValueError(f"{redacted_url(server_url)!r} {problem}")
        return server_url

    def get_summary(self) -> Dict[str, Any]:
        """The configuration, ``server_url`` with its password and credential-like query values as ``***``."""
        summary = super().get_summary()
        summary["server_url"] = redacted_url(self.server_url)
        return summary

    @property
    def client(self) -> "MlflowClient":
        """The MLflow client; each of its calls gives up within ``timeout`` with a one-line error."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            with bounded_calls(self.server_url, self.timeout):  # MLflow may refuse the URI itself
                made = MlflowClient(tracking_uri=self.server_url)
            client = _BoundedClient(made, self.server_url, self.timeout)
            self._client = client  # type: ignore[assignment]
        return self._client  # type: ignore[return-value]

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
            with bounded_calls(self.server_url, self.timeout):
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
            with bounded_calls(self.server_url, self.timeout), mlflow.start_run(run_id=parent) as active:
                yield active
        finally:
            # Leaving mlflow.start_run ends the run; the magnus run goes on until end_run.
            self.client.update_run(parent, status="RUNNING")


def _as_param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM_LENGTH]

"""Running one executable step where it stands: the only place user code runs.

The orchestrator (or ``magnus execute_single_node`` in a container, a pod or a job) hands a step
to :class:`StepRunner`, which gets its data from the catalog, runs its command (retrying up to
``max_attempts``), keeps what it printed as the execution log, puts its data in the catalog and
writes its step log once, with everything the step produced.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence

from magnus import defaults, supervision
from magnus.capture import captured_output
from magnus.datastore.models import DataCatalog, StepAttempt, StepLog
from magnus.errors import ArgumentError, CatalogError, MagnusError, ParameterError, ServiceError, StepLogNotFoundError
from magnus.json_data import by_reference
from magnus.nodes.base import BaseNode, ExecutableNode
from magnus.returns import METRIC, OBJECT
from magnus.runtime import objects
from magnus.runtime.current import CurrentStep, running, track
from magnus.runtime.environment import parameters_in_environment
from magnus.runtime.execution_log import ExecutionLog
from magnus.service_failures import using
from magnus.timing import duration, now
from magnus.tracebacks import format_failure

if TYPE_CHECKING:
    from magnus.nodes.base import CatalogSettings
    from magnus.returns import Returned
    from magnus.runtime.cache import StepInputs
    from magnus.runtime.services import RunServices

logger = logging.getLogger(defaults.LOGGER_NAME)

# The message of a step (and of its attempt) cut short by Ctrl-C.
INTERRUPTED = "interrupted"
# How the message of a step whose process died before recording its end ends: whoever saw the
# death (the process watching it, the executor that launched it) says how it died before this.
DIED_UNRECORDED = "before recording the step"
_PROCESS = "its process "


def process_died(how: str) -> str:
    """The message of a step whose own process ended ``how`` (``exited with code 0``) before recording it."""
    return f"{_PROCESS}{how}, {DIED_UNRECORDED}"


def died_before_recording(message: str) -> bool:
    """Whether ``message`` is one :func:`process_died` made (a task's own failure starts with its
    exception's class name, which holds no space)."""
    return message.startswith(_PROCESS) and message.endswith(DIED_UNRECORDED)


class StepRunner:
    """Runs executable steps of one run in this process."""

    def __init__(self, services: "RunServices") -> None:
        self.services = services

    def run(
        self,
        node: ExecutableNode,
        map_variable: defaults.TypeMapVariable = None,
        step_log: Optional[StepLog] = None,
        mock: bool = False,
        retry: int = 0,
    ) -> StepLog:
        """Run ``node`` at this map position and return its final step log, as written to the store.

        ``step_log`` is the log the orchestrator recorded as PROCESSING, when it runs in this
        process; elsewhere the recorded one is read (or a new one made). With ``mock`` the step
        is recorded as a success without running its command. ``retry`` is how many times an
        engine launched this step before (Argo's retries): attempts are numbered after those
        launches and after the attempts already recorded, 1, 2, 3 across launches. Never raises for a failure of
        the command: the step log says FAIL and why, a command that called ``sys.exit`` (or
        ``exit()``) included. Ctrl-C (``KeyboardInterrupt``) is the one exception: the step is
        recorded FAIL with the message ``interrupted`` and the interrupt goes on, to end the run.
        """
        services = self.services
        name = node.step_log_name(map_variable)
        if step_log is None:
            step_log = self._recorded_or_new(node, name)
        if services.runs_on and step_log.code_identities:  # where it runs, as its engine names it
            step_log.code_identities[0] = step_log.code_identities[0].model_copy(update=dict(services.runs_on))
        step_log.mock = step_log.mock or mock
        current = CurrentStep(services, step_log, map_variable)
        refused = self._tracking(lambda: services.experiment_tracker.start_step(services.run_id, services.tag, name))
        if refused:  # the tracker cannot follow the step: it fails, its command not run
            attempt = _finished(StepAttempt(start_time=now(), attempt_number=len(step_log.attempts) + 1), defaults.FAIL)
            attempt.message = refused
            step_log.attempts.append(attempt)
            return self._record(current, attempt)
        supervision.step_started(name)
        with running(current):
            try:
                attempt = self._attempts(node, current, mock, retry)
            except KeyboardInterrupt:  # Ctrl-C: the step is recorded as interrupted, then the run ends
                self._record(current, _interrupted_attempt(step_log))
                raise
            finally:
                supervision.step_ended()
        return self._record(current, attempt)

    def _record(self, current: CurrentStep, attempt: StepAttempt) -> StepLog:
        """Write the step log once, with the outcome of its last attempt and what it tracked."""
        services, step_log = self.services, current.step_log
        step_log.status = attempt.status
        step_log.message = attempt.message = services.redactor.redact(attempt.message)
        step_log.user_defined_metrics = current.metrics.as_run_log()
        step_log.objects.update(current.objects)
        services.run_log_store.add_step_log(services.run_id, step_log)
        refused = self._tracking(lambda: services.experiment_tracker.end_step(step_log.internal_name, step_log.status))
        if refused and step_log.status == defaults.SUCCESS:  # what it tracked is lost: the step did not succeed
            attempt.status, attempt.message = defaults.FAIL, refused
            step_log.status, step_log.message = defaults.FAIL, refused
            services.run_log_store.add_step_log(services.run_id, step_log)
        self._index(step_log)  # once it is known to have succeeded
        return step_log

    def _index(self, step_log: StepLog) -> None:
        """Index a step that executed (its cache key, what it put); an index that cannot be written is
        said in a warning and changes nothing of the step (the store is read instead)."""
        services = self.services
        if step_log.cache is None or step_log.status != defaults.SUCCESS:
            return
        try:
            with using(services.run_log_store, services.redactor):
                services.run_log_store.index_step(services.run_id, step_log)
        except (MagnusError, OSError) as exc:
            logger.warning("%s: not indexed: %s", step_log.internal_name, services.redactor.redact(str(exc)))

    def _tracking(self, call: Callable[[], None]) -> str:
        """Call a hook of the experiment tracker; '' when it went well, else why it failed, on one
        line naming the tracker (a tracker failing at a step's start or end fails the step, never the walk)."""
        services = self.services
        tracker = services.experiment_tracker
        try:
            with using(tracker, services.redactor):
                call()
        except MagnusError as exc:
            return services.redactor.redact(str(exc))
        except Exception as exc:  # noqa: BLE001 - a tracker's own failure: said, and the step fails
            said = " ".join(str(exc).split())
            return services.redactor.redact(
                f"experiment_tracker '{tracker.service_name}': {type(exc).__name__}: {said}"
            )
        return ""

    def _recorded_or_new(self, node: ExecutableNode, name: str) -> StepLog:
        """The step's log as recorded, or a new one recorded in progress (a mark of a crash mid-step)."""
        services = self.services
        try:
            return services.run_log_store.get_step_log(services.run_id, name)
        except StepLogNotFoundError:
            step_log = new_step_log(node, name, services)
            step_log.status = defaults.PROCESSING
            services.run_log_store.add_step_log(services.run_id, step_log)
            return step_log

    # ---- attempts -------------------------------------------------------------------------------
    def _attempts(self, node: ExecutableNode, current: CurrentStep, mock: bool, retry: int) -> StepAttempt:
        """Catalog get, up to ``max_attempts`` runs of the command, catalog put; the last attempt."""
        step_log = current.step_log
        # A launch that died before recording (a pod killed) still counts: the engine knows of it.
        before = max([retry, *(recorded.attempt_number for recorded in step_log.attempts)])
        settings = node.catalog
        attempt = StepAttempt(status=defaults.FAIL)
        try:
            if settings and settings.get:
                step_log.add_data_catalogs(self._sync_catalog("get", settings, step_log))
        except (CatalogError, ServiceError) as exc:
            attempt.start_time = attempt.end_time = now()
            attempt.message = f"catalog get failed: {exc}"
            step_log.attempts.append(attempt)
            return attempt

        inputs = None if mock else self._keyed(node, current)
        if inputs is not None and step_log.cache is not None and step_log.cache.enabled:
            from magnus.runtime.cache import reuse

            reused = reuse(current, step_log.cache)
            if reused is not None:
                reused.attempt_number = before + 1
                reused.parameters = self._recorded_parameters(node, current, inputs)
                step_log.attempts.append(reused)
                return reused

        log_name = self._execution_log_name(node, current) if node.keeps_execution_log and not mock else ""
        # up to max_attempts in all, counting earlier launches' (one at least: the engine launched it)
        for number in range(before + 1, max(node.max_attempts, before + 1) + 1):
            put: List[DataCatalog] = []
            tracker = self.services.experiment_tracker
            tracker.start_attempt(current.step_log.internal_name, number, current.map_variable)
            with self._execution_log(log_name, put) as sink, captured_output(self.services.redactor, sink):
                attempt = self._attempt(node, current, mock, inputs)
            inputs = None  # a retry reads them again
            attempt.attempt_number = number
            tracker.end_attempt(
                current.step_log.internal_name, number, attempt.status, self.services.redactor.redact(attempt.message)
            )
            step_log.attempts.append(attempt)
            step_log.add_data_catalogs(put)
            if attempt.message == INTERRUPTED:
                raise KeyboardInterrupt  # recorded, and now the run ends (no retry)
            if attempt.status == defaults.SUCCESS:
                break

        if attempt.status == defaults.SUCCESS and settings and settings.put:
            try:
                step_log.add_data_catalogs(self._sync_catalog("put", settings, step_log))
            except (CatalogError, ServiceError) as exc:
                attempt.status = defaults.FAIL
                attempt.message = f"catalog put failed: {exc}"
        return attempt

    def _keyed(self, node: ExecutableNode, current: CurrentStep) -> Optional["StepInputs"]:
        """The step's cache key, recorded on its log, and the inputs read for it (its first attempt's).

        None when there is no command, or the inputs cannot be read: the attempt reads them again
        and fails saying why, as without a key.
        """
        from magnus.runtime.cache import StepInputs, got, make_record

        task = node.task()
        if task is None:
            return None
        services = self.services
        try:
            parameters = services.run_log_store.get_parameters(services.run_id)
            files = got(current.step_log)
            wanted = task.objects_wanted(parameters, current.map_variable)
            held, hashes = objects.held_with_hashes(current, wanted) if wanted else ({}, {})
            inputs = StepInputs(parameters, held)
            current.step_log.cache = make_record(node, task, current, inputs, files, hashes)
        except Exception as exc:
            logger.debug("%s: no cache key: %s", current.step_log.internal_name, exc, exc_info=True)
            return None
        return inputs

    def _recorded_parameters(self, node: ExecutableNode, current: CurrentStep, inputs: "StepInputs") -> Dict[str, Any]:
        """The parameters the command receives, as an attempt records them (secrets masked)."""
        task = node.task()
        used = task.parameters_used(inputs.parameters, current.map_variable) if task else {}
        return by_reference(self.services.redactor.redact_data(used))

    def _attempt(
        self, node: ExecutableNode, current: CurrentStep, mock: bool, inputs: Optional["StepInputs"] = None
    ) -> StepAttempt:
        """Run the command once; parameters go in by argument and environment and come back from both.

        ``inputs``: the parameters and objects read already (for the step's cache key), else read here.
        """
        attempt = StepAttempt(status=defaults.FAIL, start_time=now())
        task = node.task()
        if mock or task is None:
            return _finished(attempt, defaults.SUCCESS)
        services = self.services
        store, redactor = services.run_log_store, services.redactor
        try:
            parameters = inputs.parameters if inputs else store.get_parameters(services.run_id)
            used = task.parameters_used(parameters, current.map_variable)
            attempt.parameters = by_reference(redactor.redact_data(used))  # a large value is in the run's once
            _refuse_objects_named_as_parameters(task.returned(), {**parameters, **(current.map_variable or {})})
            held = (
                inputs.objects
                if inputs
                else objects.held(current, task.objects_wanted(parameters, current.map_variable))
            )
            given = {**parameters, **held}
            with parameters_in_environment(parameters, current.map_variable, services.parameter_variables) as changed:
                returned = task.execute_command(given, current.map_variable)
            for name, value, number in changed.metrics:
                track(current, name, value, number)
            returned = _kept_as_declared(current, task.returned(), returned)
            updates = {**changed.parameters, **returned}
            if updates:
                attempt.output_parameters = redactor.redact_data(updates)
                store.set_parameters(services.run_id, attempt.output_parameters)
        except ArgumentError as exc:  # found before the function ran: its one line is the whole story
            return _finished(attempt, defaults.FAIL, str(exc))
        except Exception as exc:  # noqa: BLE001 - the task failed: shown, and recorded as the step's failure
            sys.stderr.write(format_failure(exc))  # into the captured execution log and the console
            return _finished(attempt, defaults.FAIL, f"{type(exc).__name__}: {exc}")
        except SystemExit as exc:  # the task's exit, not the process's: whatever the code, it failed
            sys.stderr.write(format_failure(exc))
            code = "" if exc.code is None else repr(exc.code)
            return _finished(attempt, defaults.FAIL, f"the task called sys.exit({code})")
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return _finished(attempt, defaults.FAIL, INTERRUPTED)
        return _finished(attempt, defaults.SUCCESS)

    # ---- catalog --------------------------------------------------------------------------------
    def _sync_catalog(self, stage: str, settings: "CatalogSettings", step_log: StepLog) -> List[DataCatalog]:
        services = self.services
        catalog = services.catalog
        folder = settings.compute_data_folder or catalog.compute_data_folder
        entries: List[DataCatalog] = []
        with using(catalog, services.redactor):
            for name in settings.get if stage == "get" else settings.put:
                if stage == "get":
                    entries.extend(catalog.get(name, services.run_id, folder))
                else:
                    entries.extend(catalog.put(name, services.run_id, folder, synced_catalogs=step_log.data_catalog))
        return entries

    def _execution_log_name(self, node: ExecutableNode, current: CurrentStep) -> str:
        """``<step>.execution.log[_<map item>...]``, magnus 0.5.1's name of what a step printed, encoded
        (:func:`~magnus.names.encode_file_name`): whatever a map value holds (``../x``, ``/``, NUL),
        the log is one file in the run's folder of the catalog."""
        from magnus.map_position import position_names
        from magnus.names import encode_file_name

        file_name = node.name.replace(" ", "_") + defaults.EXECUTION_LOG_SUFFIX
        for item in position_names(current.map_variable):
            file_name += f"_{item}"
        return encode_file_name(file_name)

    @contextlib.contextmanager
    def _execution_log(self, name: str, put: List[DataCatalog]) -> Iterator[Optional[ExecutionLog]]:
        """Where what an attempt prints is kept as it prints ([`ExecutionLog`][]: memory stays bounded
        whatever it prints), put in the catalog as ``name`` after the attempt (its entries added to
        ``put``). None when no log is kept (``name`` empty, a catalog keeping no data).

        Keeping the log is best effort: a log that cannot be written or put (a full disk, the
        catalog's service failing) is said in a warning and never changes how the step ended.
        """
        services = self.services
        catalog = services.catalog
        if not name or not catalog.keeps_data:
            yield None
            return
        log = ExecutionLog()
        try:
            yield log
            try:
                with using(catalog, services.redactor):
                    put.extend(log.put(catalog, name, services.run_id))
            except (CatalogError, ServiceError, OSError) as exc:
                logger.warning("%s: the execution log was not kept: %s", name, services.redactor.redact(str(exc)))
        finally:
            log.close()


def _refuse_objects_named_as_parameters(returns: Sequence["Returned"], parameters: Dict[str, Any]) -> None:
    """Before the command runs: an object of ``returns`` may not have a parameter's name.

    A later step's argument of that name would receive the parameter, silently not the object.

    Raises:
        ParameterError: naming the object.
    """
    for declared in returns:
        if declared.kind == OBJECT and declared.name in parameters:
            raise ParameterError(
                f"returns the object '{declared.name}', but the run has a parameter '{declared.name}', which an "
                f"argument '{declared.name}' receives first: name the object otherwise"
            )


def _kept_as_declared(current: CurrentStep, returns: Sequence["Returned"], returned: Dict[str, Any]) -> Dict[str, Any]:
    """Keep what a task returned as its ``returns`` says: objects put, metrics tracked; the parameters.

    Without ``returns`` everything returned is a parameter (magnus 0.5.1).
    """
    if not returns:
        return returned
    parameters: Dict[str, Any] = {}
    for declared in returns:
        value = returned[declared.name]
        if declared.kind == OBJECT:
            objects.put(current, value, declared.name)
        elif declared.kind == METRIC:
            track(current, declared.name, value)
        else:
            parameters[declared.name] = value
    return parameters


def new_step_log(node: BaseNode, internal_name: str, services: "RunServices") -> StepLog:
    """A step log for ``node`` at its resolved name, carrying the run's code identity."""
    return StepLog(
        name=node.name,
        internal_name=internal_name,
        status=defaults.CREATED,
        step_type=node.node_type,
        code_identities=[services.code_identity],
    )


def _interrupted_attempt(step_log: StepLog) -> StepAttempt:
    """The attempt Ctrl-C cut short (made when it came before or after the command)."""
    if step_log.attempts and step_log.attempts[-1].message == INTERRUPTED:
        return step_log.attempts[-1]
    attempt = _finished(StepAttempt(start_time=now()), defaults.FAIL, INTERRUPTED)
    attempt.attempt_number = len(step_log.attempts) + 1
    step_log.attempts.append(attempt)
    return attempt


def _finished(attempt: StepAttempt, status: str, message: str = "") -> StepAttempt:
    attempt.status = status
    attempt.message = message
    attempt.end_time = now()
    attempt.duration = duration(attempt.start_time, attempt.end_time)
    return attempt

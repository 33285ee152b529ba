"""A step's cache key, and reusing an earlier execution with the same key instead of running it.

The key is made where the step runs, after its catalog files were got and before its command
runs, from everything its result depends on (see [`CacheRecord`][magnus.datastore.models.CacheRecord]):

- code: what [`code_versions`][magnus.tasks.base.BaseTaskType.code_versions] says (a python
  function's module and the project modules it imports; a shell command; a notebook's cells);
- parameters: those the task reads ([`parameters_keyed`][magnus.tasks.base.BaseTaskType.parameters_keyed]),
  the map position included;
- files: the content hash of every catalog file it got;
- objects: the hash of every object it receives;
- settings: its task type and the task's other fields, its ``overrides`` and ``catalog`` block.

Every step records its key (so a later run can reuse it, and ``magnus runs why`` can compare);
a step with caching on (``cache: true``, or ``--cache`` unless ``cache: false``) asks the store's
index for an earlier successful execution with that key and, on a hit, restores its outputs (its
output parameters, the files and objects it put, copied within the catalog) instead of running.

Nothing secret is kept: parameters are hashed for display after the run's secrets are masked,
and the key is a sha256 over the real values.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from magnus import defaults
from magnus.datastore.models import CacheRecord, DataCatalog, StepAttempt, StepLog, StepReference
from magnus.errors import CatalogError, MagnusError, ServiceError
from magnus.runtime import objects
from magnus.service_failures import using
from magnus.source_hash import text_hash
from magnus.timing import duration, now

if TYPE_CHECKING:
    from magnus.nodes.base import ExecutableNode
    from magnus.runtime.current import CurrentStep
    from magnus.tasks.base import BaseTaskType

logger = logging.getLogger(defaults.LOGGER_NAME)

CODE, PARAMETERS, FILES, OBJECTS, SETTINGS = "code", "parameters", "files", "objects", "settings"
COMPONENTS = (CODE, PARAMETERS, FILES, OBJECTS, SETTINGS)


@dataclass
class StepInputs:
    """What a step's first attempt receives, read once for its key: the run's parameters and the
    objects its function takes."""

    parameters: Dict[str, Any]
    objects: Dict[str, Any] = field(default_factory=dict)


def value_hash(value: Any) -> str:
    """A hash of a parameter's value: its JSON text with sorted keys (``repr`` of what JSON cannot hold)."""
    return text_hash(json.dumps(value, sort_keys=True, default=repr))


def make_record(
    node: "ExecutableNode",
    task: "BaseTaskType",
    current: "CurrentStep",
    inputs: StepInputs,
    files: List[DataCatalog],
    object_hashes: Dict[str, str],
) -> CacheRecord:
    """The cache key of the step about to run, with its components (see the module's docstring)."""
    services = current.services
    keyed = task.parameters_keyed(inputs.parameters, current.map_variable)
    shown = services.redactor.redact_data(keyed)
    settings = {
        "task_type": task.task_type,
        "task": _canonical(task.model_dump(mode="json", exclude={"command"})),
        "overrides": _canonical(node.overrides),
        "catalog": _canonical(node.catalog.model_dump(mode="json") if node.catalog else None),
    }
    if current.map_variable:  # what a step puts inside a map is kept at its position: never reused across items
        settings["map_position"] = _canonical(current.map_variable)
    components: Dict[str, Dict[str, str]] = {
        CODE: dict(sorted(task.code_versions().items())),
        PARAMETERS: {name: value_hash(value) for name, value in sorted(shown.items())},
        FILES: {entry.name: entry.data_hash for entry in files},
        OBJECTS: dict(sorted(object_hashes.items())),
        SETTINGS: settings,
    }
    real = {name: value_hash(value) for name, value in sorted(keyed.items())}
    key = text_hash(json.dumps({**components, PARAMETERS: real}, sort_keys=True))
    return CacheRecord(key=key, components=components, enabled=node.caches(services.options.cache))


def reuse(current: "CurrentStep", record: CacheRecord) -> Optional[StepAttempt]:
    """Restore the outputs of the latest earlier execution with ``record``'s key; the attempt
    recording it, or None when there is none (or it cannot be restored: then the step runs)."""
    services = current.services
    store = services.run_log_store
    try:
        with using(store, services.redactor):
            found = store.cached_execution(record.key)
            if found is None:
                return None
            earlier = store.get_step_log(found.run_id, found.step)
    except MagnusError as exc:
        logger.warning("%s: the cache could not be read, the step runs: %s", current.step_log.internal_name, exc)
        return None
    if earlier.cache is None or earlier.cache.key != record.key or earlier.status != defaults.SUCCESS:
        return None  # an index entry is a hint: the step it names must still say so
    attempt = StepAttempt(status=defaults.SUCCESS, start_time=now())
    try:
        entries = _restore(current, earlier, found.run_id)
    except (CatalogError, ServiceError, OSError) as exc:
        logger.warning(
            "%s: run %s step %s has the same cache key but its outputs could not be restored, the step runs: %s",
            current.step_log.internal_name,
            found.run_id,
            found.step,
            services.redactor.redact(str(exc)),
        )
        return None
    current.step_log.add_data_catalogs(entries)
    current.step_log.objects.update(earlier.objects)
    _restore_metrics(current, earlier.user_defined_metrics)
    record.reused_from = StepReference(run_id=found.run_id, step=found.step, time=found.time or _ended(earlier))
    attempt.output_parameters = dict(earlier.attempts[-1].output_parameters) if earlier.attempts else {}
    if attempt.output_parameters:
        store.set_parameters(services.run_id, attempt.output_parameters)
    attempt.message = reused_message(record.reused_from)
    attempt.end_time = now()
    attempt.duration = duration(attempt.start_time, attempt.end_time)
    return attempt


# How the message of a step whose outputs were restored from an earlier execution starts.
REUSED = "reused: "


def reused_message(origin: StepReference) -> str:
    """A reused step's message: where its outputs came from."""
    when = f", executed at {origin.time}" if origin.time else ""
    return f"{REUSED}from run {origin.run_id}, step {origin.step} (same cache key{when})"


def _restore(current: "CurrentStep", earlier: StepLog, run_id: str) -> List[DataCatalog]:
    """Copy what ``earlier`` put (files, objects) into this run's catalog."""
    services = current.services
    put = {entry.name: entry for entry in earlier.data_catalog if entry.stage == "put"}
    if run_id == services.run_id:  # a step of this run (another branch): its files are this run's already
        return [entry.model_copy() for entry in put.values()]
    with using(services.catalog, services.redactor):
        entries = services.catalog.copy_between_runs([put[name] for name in sorted(put)], run_id, services.run_id)
    if earlier.objects and not services.catalog.keeps_data:
        objects.copy_between_runs(current, earlier.objects, run_id)
    return entries


def _restore_metrics(current: "CurrentStep", metrics: Dict[str, Any]) -> None:
    """The metrics the earlier execution tracked, in this step's log (trackers saw them in that run)."""
    for name, value in metrics.items():
        if isinstance(value, dict):
            for number, point in value.items():
                current.metrics.record(name, point, int(number))
        else:
            current.metrics.record(name, value, 0)


def got(step_log: StepLog) -> List[DataCatalog]:
    """The catalog files the step got so far, by name (the last entry of a name wins), sorted."""
    found = {entry.name: entry for entry in step_log.data_catalog if entry.stage == "get"}
    return [found[name] for name in sorted(found)]


def _ended(step_log: StepLog) -> str:
    return step_log.attempts[-1].end_time if step_log.attempts else ""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)

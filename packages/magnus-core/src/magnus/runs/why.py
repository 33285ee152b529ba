"""``magnus runs why RUN STEP``: why a step ran, or was reused, in words a person can act on.

A reused step names the execution it came from (run, step, time). A step that ran is compared,
component by component of its cache key, with the nearest earlier execution of the same step
(the newest other run of the store that recorded it with a key): the code (which file or
function, with a short diff when both versions can be read: the file as it is now and, from git,
as it was at the commit the earlier run recorded), the parameters (name, old → new, as the run
log recorded them: secrets masked), the files it got (path, old hash → new), the objects it
received, and its settings. Only hashes and what the run log already shows are printed: nothing
secret (a parameter masked as secret that changed is said to have changed, never shown).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.listing import RunQuery
from magnus.datastore.models import RunLog, StepLog, StepReference
from magnus.errors import RunLogError
from magnus.terminal import for_terminal as shown

# How many earlier runs are looked at for the nearest earlier execution of a step (newest first).
EARLIER_RUNS_LOOKED_AT = 200
_DIFF_LINES = 20
_SHORT = 12


@dataclass
class Difference:
    """One component that differs: ``component`` (code, parameter, file, object, setting), its name,
    the old and new value (a short hash, or a parameter's recorded value), and a diff of code."""

    component: str
    name: str
    old: str
    new: str
    diff: List[str] = field(default_factory=list)


@dataclass
class Explanation:
    """Why ``step`` of ``run_id`` ran or was reused (``outcome``: ``reused``, ``ran``, or ``no key``)."""

    run_id: str
    step: str
    outcome: str
    cache_enabled: bool = False
    key: str = ""
    reused_from: Optional[Dict[str, str]] = None
    compared_with: Optional[Dict[str, str]] = None
    differences: List[Difference] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def explain(store: BaseRunLogStore, run_log: RunLog, step: StepLog) -> Explanation:
    """Why ``step`` of ``run_log`` ran or was reused (see the module's docstring)."""
    record = step.cache
    explanation = Explanation(run_id=run_log.run_id, step=step.internal_name, outcome="no key")
    if record is None:
        explanation.note = (
            "the step has no cache key: it ran no command of its own (a stub, a composite step), was mocked, "
            "or was recorded by a magnus without caching"
        )
        if step.mock and run_log.original_run_id:
            explanation.outcome = "reused"
            explanation.note = f"reused by name from run {run_log.original_run_id} (--use-cached)"
        return explanation
    explanation.key, explanation.cache_enabled = record.key, record.enabled
    if record.reused_from is not None:
        explanation.outcome = "reused"
        explanation.reused_from = record.reused_from.model_dump()
        return explanation
    explanation.outcome = "ran"
    earlier = nearest_earlier(store, run_log, step.internal_name)
    if earlier is None:
        explanation.note = "no earlier execution of this step was recorded in this store"
    else:
        reference, old = earlier
        explanation.compared_with = reference.model_dump()
        explanation.differences = differences(old, step, reference)
        if not explanation.differences:
            same = f"its inputs were those of run {reference.run_id}, step {reference.step}"
            explanation.note = _same_components(old, step) if record.enabled else same
    if not record.enabled:
        off = "caching was off for this step (no --cache, or cache: false)"
        explanation.note = f"{off}; {explanation.note}" if explanation.note else off
    return explanation


def _same_components(old: StepLog, new: StepLog) -> str:
    if old.cache is not None and new.cache is not None and old.cache.key != new.cache.key:
        return "a parameter masked as secret changed (its value is never shown)"
    if old.status != "SUCCESS":
        return "the earlier execution with the same key did not succeed"
    return "an execution with the same key exists, but its outputs could not be restored (see the run's warnings)"


def nearest_earlier(
    store: BaseRunLogStore, run_log: RunLog, internal_name: str
) -> Optional[tuple[StepReference, StepLog]]:
    """The newest other run (started before this one) holding ``internal_name`` with a cache key, and its step."""
    from magnus.datastore.listing import summarize

    start = summarize(run_log).start
    runs = store.list_runs(RunQuery()).runs
    looked = 0
    for summary in runs:
        if summary.run_id == run_log.run_id or (start and summary.start and summary.start > start):
            continue
        looked += 1
        if looked > EARLIER_RUNS_LOOKED_AT:
            break
        try:
            step = store.get_step_log(summary.run_id, internal_name)
        except RunLogError:
            continue
        if step.cache is not None:
            ended = step.attempts[-1].end_time if step.attempts else ""
            return StepReference(run_id=summary.run_id, step=internal_name, time=ended), step
    return None


def differences(old: StepLog, new: StepLog, reference: StepReference) -> List[Difference]:
    """What differs between the cache components of ``old`` and ``new``, component by component."""
    assert old.cache is not None and new.cache is not None
    before, after = old.cache.components, new.cache.components
    found: List[Difference] = []
    found.extend(_code(before.get("code", {}), after.get("code", {}), old))
    old_values = old.attempts[-1].parameters if old.attempts else {}
    new_values = new.attempts[-1].parameters if new.attempts else {}
    for name, (was, now) in _changed(before.get("parameters", {}), after.get("parameters", {})).items():
        found.append(Difference("parameter", name, _value(old_values, name, was), _value(new_values, name, now)))
    for component, label in (("files", "input file"), ("objects", "object"), ("settings", "setting")):
        for name, (was, now) in _changed(before.get(component, {}), after.get(component, {})).items():
            shorten = component != "settings"
            found.append(Difference(label, name, _short(was) if shorten else was, _short(now) if shorten else now))
    return found


def _changed(before: Dict[str, str], after: Dict[str, str]) -> Dict[str, tuple[str, str]]:
    names = sorted(set(before) | set(after))
    return {name: (before.get(name, ""), after.get(name, "")) for name in names if before.get(name) != after.get(name)}


def _code(before: Dict[str, str], after: Dict[str, str], old: StepLog) -> List[Difference]:
    found = []
    for name, (was, now) in _changed(before, after).items():
        what = {"function": "the function called", "command": "the command"}.get(name, name)
        diff = _source_diff(name, was, now, old) if name not in ("function", "command") else []
        found.append(Difference("code", what, _short(was), _short(now), diff))
    return found


def _source_diff(path: str, was: str, now: str, old: StepLog) -> List[str]:
    """A short unified diff of ``path`` from the version hashed ``was`` to ``now``, when both can be read:
    the file here now, and the earlier version from git at the commit the earlier run recorded."""
    current = _read_if(Path(path), now)
    commit = old.code_identities[0].code_identifier if old.code_identities else ""
    earlier = _git_show(commit, path, was) if commit and was else None
    if current is None or earlier is None:
        return []
    lines = list(difflib.unified_diff(earlier.splitlines(), current.splitlines(), "before", "after", lineterm="", n=1))
    return lines[:_DIFF_LINES] + (["..."] if len(lines) > _DIFF_LINES else [])


def _read_if(path: Path, digest: str) -> Optional[str]:
    try:
        content = path.read_bytes()
    except OSError:
        return None
    return content.decode(errors="replace") if hashlib.sha256(content).hexdigest() == digest else None


def _git_show(commit: str, path: str, digest: str) -> Optional[str]:
    try:
        result = subprocess.run(["git", "show", f"{commit}:./{path}"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0 or hashlib.sha256(result.stdout).hexdigest() != digest:
        return None
    return result.stdout.decode(errors="replace")


def _value(recorded: Dict[str, Any], name: str, digest: str) -> str:
    """A parameter's value as the attempt recorded it (secrets masked), else its short hash ('absent': none)."""
    if not digest:
        return "(absent)"
    if name in recorded:
        return json.dumps(recorded[name], default=repr)
    return _short(digest)


def _short(digest: str) -> str:
    return digest[:_SHORT] if digest else "(absent)"


def render(explanation: Explanation) -> str:
    """The explanation as lines for a terminal."""
    head = f"run {explanation.run_id}, step {explanation.step}: "
    lines: List[str] = []
    if explanation.outcome == "reused" and explanation.reused_from:
        origin = explanation.reused_from
        when = f" at {origin['time']}" if origin.get("time") else ""
        lines.append(head + f"reused (cache hit): from run {origin['run_id']}, step {origin['step']}{when}")
        lines.append(f"  key {explanation.key[:_SHORT]}: same code, parameters, input files, objects and settings")
    elif explanation.outcome == "reused" or explanation.outcome == "no key":
        lines.append(
            head + explanation.outcome + (f": {explanation.note}" if explanation.note else "")
        )  # by name, or none
    else:
        compared = explanation.compared_with
        against = f" run {compared['run_id']}, step {compared['step']}" if compared else ""
        if explanation.differences:
            lines.append(head + f"ran (cache miss): differs from{against} in")
        else:
            lines.append(head + "ran" + (f": {explanation.note}" if explanation.note else ""))
        for difference in explanation.differences:
            lines.append(f"  {difference.component} {difference.name}: {difference.old} -> {difference.new}")
            lines.extend(f"    {line}" for line in difference.diff)
        if explanation.differences and explanation.note:
            lines.append(f"  ({explanation.note})")
    return "\n".join(shown(line) for line in lines) + "\n"

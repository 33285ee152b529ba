"""Finding runs in a store: a run's summary, the query that selects runs, and the selection itself.

A summary's times are read from the run log itself (the start and end of its step attempts, in
the clock of the processes that ran it), not from the store's files or rows, so every store lists
a run with the same times, runs written by magnus 0.5.1 included.

Reading a whole log to list one line costs as much as the log (hundreds of MB for a map of 50,000
items), so stores keep a small record of each run's summary, written with its final status
(:func:`summary_record`), and read the log only for runs without one: running, or written by an
older magnus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from magnus import defaults
from magnus.datastore.models import BranchLog, RunLog, StepLog

if TYPE_CHECKING:
    from magnus.errors import RunLogUnreadableError

FINISHED = (defaults.SUCCESS, defaults.FAIL)


@dataclass(frozen=True)
class RunSummary:
    """One line of a listing: a run's id, status and tag, and when it started and ended.

    ``start`` is the start of the run's earliest step attempt (None before any step began);
    ``end`` the end of its latest attempt once the run is SUCCESS or FAIL (None while it runs).
    """

    run_id: str
    status: str
    tag: str
    start: Optional[datetime]
    end: Optional[datetime]

    @property
    def duration(self) -> Optional[timedelta]:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


@dataclass(frozen=True)
class RunListing:
    """What ``list_runs`` found: the runs selected, and the runs left out because their logs do not read back."""

    runs: List[RunSummary]
    unreadable: List["RunLogUnreadableError"]


@dataclass(frozen=True)
class RunQuery:
    """Which runs to list: every field left empty selects all.

    ``since``: runs that started at or after it (runs with no step started yet are kept: they are
    being created). ``limit``: at most that many, the newest.
    """

    status: str = ""
    tag: str = ""
    since: Optional[datetime] = None
    limit: Optional[int] = None

    def admits_header(self, run_log: RunLog) -> bool:
        """Whether a run's own fields (status, tag) pass the query: checked before its steps are read."""
        if self.status and run_log.status != self.status:
            return False
        return not (self.tag and (run_log.tag or "") != self.tag)

    def admits(self, summary: RunSummary) -> bool:
        if self.status and summary.status != self.status:
            return False
        if self.tag and summary.tag != self.tag:
            return False
        return not (self.since is not None and summary.start is not None and summary.start < self.since)


def summarize(run_log: RunLog) -> RunSummary:
    """The summary of a full run log (its steps included).

    A resumed run's reused steps (``--use-cached``) are copies that keep the first run's times:
    they are left out of its start and end.
    """
    return summary_of(run_log, span(run_log, leave_out_reused=bool(run_log.original_run_id)))


def summary_of(header: RunLog, times: Tuple[Optional[datetime], Optional[datetime]]) -> RunSummary:
    """The summary of the run whose own fields are ``header`` and whose steps span ``times``.

    For stores that find the span of a run's attempts without building its steps (:func:`times_span`).
    """
    start, end = times
    return RunSummary(
        run_id=header.run_id,
        status=header.status,
        tag=header.tag or "",
        start=start,
        end=end if header.status in FINISHED else None,
    )


def branch_label(step: StepLog, branch: BranchLog) -> str:
    """A branch's own part of its name, under the step holding it: ``a`` of ``par.a``, ``0.01`` of ``map.0.01``."""
    return branch.internal_name[len(step.internal_name) + 1 :]


def summary_record(summary: RunSummary) -> Dict[str, Any]:
    """The summary as JSON data, for a store to keep beside (or in) the run's log."""
    return {
        "run_id": summary.run_id,
        "status": summary.status,
        "tag": summary.tag,
        "start": None if summary.start is None else summary.start.isoformat(),
        "end": None if summary.end is None else summary.end.isoformat(),
    }


def summary_from_record(record: Any) -> Optional[RunSummary]:
    """The summary a store kept (:func:`summary_record`); None when ``record`` is not one (then read the log)."""
    if not isinstance(record, dict):
        return None
    run_id, status, tag, start, end = (record.get(name) for name in ("run_id", "status", "tag", "start", "end"))
    if not (isinstance(run_id, str) and isinstance(status, str) and isinstance(tag, str)):
        return None
    try:
        return RunSummary(run_id=run_id, status=status, tag=tag, start=_moment(start), end=_moment(end))
    except (TypeError, ValueError):
        return None


def _moment(text: Any) -> Optional[datetime]:
    """A time a summary record keeps (ISO text, or None)."""
    return None if text is None else datetime.fromisoformat(text)


def span(
    log: Union[RunLog, BranchLog, StepLog], leave_out_reused: bool = False
) -> Tuple[Optional[datetime], Optional[datetime]]:
    """The earliest attempt start and the latest attempt end of a log and everything below it.

    ``leave_out_reused``: without the steps marked ``mock`` and what they hold (in a resumed run,
    the steps copied from the run it resumes).
    """
    if isinstance(log, StepLog):
        steps = [] if leave_out_reused and log.mock else [log, *walk_steps(log, leave_out_reused)]
    else:
        steps = list(walk_steps(log, leave_out_reused))
    return times_span((attempt.start_time, attempt.end_time) for step in steps for attempt in step.attempts)


def times_span(attempts: Iterable[Tuple[str, str]]) -> Tuple[Optional[datetime], Optional[datetime]]:
    """The earliest start and the latest end of attempts given as their ``(start_time, end_time)`` text."""
    starts: List[datetime] = []
    ends: List[datetime] = []
    for start_text, end_text in attempts:
        start, end = parse_time(start_text), parse_time(end_text)
        if start is not None:
            starts.append(start)
        if end is not None:
            ends.append(end)
    return (min(starts) if starts else None, max(ends) if ends else None)


def select_runs(summaries: Iterable[RunSummary], query: RunQuery) -> List[RunSummary]:
    """The summaries the query admits, newest first (runs not started yet first), at most ``limit``."""
    admitted = [summary for summary in summaries if query.admits(summary)]
    admitted.sort(key=lambda summary: (summary.start is None, summary.start or datetime.min), reverse=True)
    return admitted if query.limit is None else admitted[: query.limit]


def walk_steps(log: Union[RunLog, BranchLog, StepLog], prune_mock: bool = False) -> Iterator[StepLog]:
    """Every step log of a run log (or of a branch, or below a step), parents before their branches.

    ``prune_mock``: leave out steps marked ``mock`` and everything they hold.
    """
    steps = log.branches.values() if isinstance(log, StepLog) else log.steps.values()
    for item in steps:
        if isinstance(item, StepLog):
            if prune_mock and item.mock:
                continue
            yield item
        yield from walk_steps(item, prune_mock)


def parse_time(text: str) -> Optional[datetime]:
    """A run log time stamp (``str(datetime.now())``, as magnus 0.5.1 wrote them); None when empty or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None

"""The promises of :class:`~magnus.datastore.base.BaseRunLogStore`, as tests."""

from __future__ import annotations

import multiprocessing
import sys
from datetime import datetime
from typing import Any, Callable, ClassVar

import pytest

from magnus import defaults
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.listing import RunQuery, RunSummary, summarize
from magnus.datastore.models import BranchLog, CacheRecord, DataCatalog, StepAttempt, StepLog, StepReference
from magnus.errors import (
    BranchLogNotFoundError,
    RunLogExistsError,
    RunLogNotFoundError,
    RunLogUnreadableError,
    StepLogNotFoundError,
)

StoreFactory = Callable[[], BaseRunLogStore]

# The magnus 0.5.1 run log layout: these keys, in this order.
RUN_LOG_KEYS = [
    "run_id",
    "dag_hash",
    "use_cached",
    "tag",
    "original_run_id",
    "status",
    "steps",
    "parameters",
    "run_config",
]
STEP_LOG_KEYS = [
    "name",
    "internal_name",
    "status",
    "step_type",
    "message",
    "mock",
    "code_identities",
    "attempts",
    "user_defined_metrics",
    "branches",
    "data_catalog",
]


def _step(name: str, status: str = defaults.SUCCESS, step_type: str = "task") -> StepLog:
    short = name.rsplit(".", 1)[-1]
    return StepLog(name=short, internal_name=name, status=status, step_type=step_type)


KEY_A, KEY_B = "a" * 64, "b" * 64
HASH_X, HASH_Y, HASH_Z = "1" * 64, "2" * 64, "3" * 64


def _executed(
    name: str,
    key: str,
    time: str,
    puts: tuple[str, ...] | list[str] = (),
    status: str = defaults.SUCCESS,
    looked: bool = False,
) -> StepLog:
    """A step that ran with cache key ``key`` (``looked``: with caching on), ended on 2026-03-01 at
    ``time`` and put files of ``puts``."""
    step = _step(name, status=status)
    step.cache = CacheRecord(key=key, components={"code": {"command": "c" * 64}}, enabled=looked)
    step.attempts = [StepAttempt(attempt_number=1, status=status, end_time=f"2026-03-01 {time}")]
    step.data_catalog = [
        DataCatalog(name=f"out{number}.csv", data_hash=digest, stage="put") for number, digest in enumerate(puts)
    ]
    return step


def _timed_run(store: BaseRunLogStore, run_id: str, status: str, tag: str, day: int) -> None:
    """A run whose first task ran on ``day`` at 10:00 and whose map item ended last, at 10:05."""
    store.create_run_log(run_id, tag=tag, status=defaults.PROCESSING)
    first = _step("first")
    first.attempts = [StepAttempt(attempt_number=1, start_time=f"2026-03-{day:02d} 10:00:00.250000", status=status)]
    first.attempts[0].end_time = f"2026-03-{day:02d} 10:01:00"
    store.add_step_log(run_id, first)
    store.add_step_log(run_id, _step("fan", step_type="map"))
    store.add_branch_log(run_id, BranchLog(internal_name="fan.0.5", status=defaults.SUCCESS))
    inner = _step("fan.0.5.work")
    inner.attempts = [
        StepAttempt(start_time=f"2026-03-{day:02d} 10:02:00", end_time=f"2026-03-{day:02d} 10:05:00", status=status)
    ]
    store.add_step_log(run_id, inner)
    store.update_run_log_status(run_id, status)


def _write_branch(factory: StoreFactory, run_id: str, branch: str, steps: int) -> None:
    """One writer process: its own store object, ``steps`` step logs into its own branch."""
    store = factory()
    store.add_branch_log(run_id, BranchLog(internal_name=branch, status=defaults.PROCESSING))
    for number in range(steps):
        store.add_step_log(run_id, _step(f"{branch}.step{number}"))
    branch_log = store.get_branch_log(run_id, branch)
    branch_log.status = defaults.SUCCESS
    store.add_branch_log(run_id, branch_log)


def _claim(factory: StoreFactory, run_id: str, start: Any) -> None:
    """One process creating ``run_id`` once all are ready: exit 0 when it won, 3 when refused."""
    store = factory()
    start.wait(30)
    try:
        store.create_run_log(run_id, status=defaults.PROCESSING)
    except RunLogExistsError:
        sys.exit(3)


class RunLogStoreContract:
    """Subclass and provide a ``make_store`` fixture returning a factory of stores.

    Every call of the factory must return a store seeing the same data (a new object over the same
    folder, database, ...), as another process of the same run would.
    """

    # The store keeps run logs beyond the store object (files, a database).
    persistent: ClassVar[bool] = True
    # Several processes may write the same run at once (map iterations on different pods).
    concurrent_writers: ClassVar[bool] = False

    @pytest.fixture
    def make_store(self, tmp_path: Any) -> StoreFactory:
        raise NotImplementedError("provide a make_store fixture returning a store factory")

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> BaseRunLogStore:
        return make_store()

    def spoil_step(self, store: BaseRunLogStore, run_id: str, internal_name: str) -> None:
        """Spoil what the store keeps of one recorded step, as a crash or a hand edit would: a file
        cut short, a garbled line or row. Stores that keep no bytes of their own skip."""
        pytest.skip("this store keeps nothing that can be spoilt")

    # ---- whole logs --------------------------------------------------------------------------
    def test_create_then_get(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1", dag_hash="abc", tag="exp", status=defaults.PROCESSING)
        run_log = store.get_run_log_by_id("run-1")
        assert (run_log.run_id, run_log.dag_hash, run_log.tag, run_log.status) == (
            "run-1",
            "abc",
            "exp",
            defaults.PROCESSING,
        )
        assert store.run_log_exists("run-1")
        assert not store.run_log_exists("run-2")

    def test_create_twice_is_refused(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.set_parameters("run-1", {"kept": True})
        with pytest.raises(RunLogExistsError):
            store.create_run_log("run-1")
        assert store.get_parameters("run-1") == {"kept": True}

    def test_unknown_run_is_not_found(self, store: BaseRunLogStore) -> None:
        with pytest.raises(RunLogNotFoundError):
            store.get_run_log_by_id("nope")

    def test_layout_is_magnus_0_5_1(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.add_step_log("run-1", _step("a"))
        dumped = store.get_run_log_by_id("run-1").model_dump()
        assert list(dumped) == RUN_LOG_KEYS
        assert list(dumped["steps"]["a"]) == STEP_LOG_KEYS

    # ---- run-level fields -------------------------------------------------------------------
    def test_parameters_merge(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.set_parameters("run-1", {"x": 1, "nested": {"a": [1, 2]}})
        store.set_parameters("run-1", {"x": 2, "y": "z"})
        assert store.get_parameters("run-1") == {"x": 2, "y": "z", "nested": {"a": [1, 2]}}

    def test_get_parameters_returns_a_copy(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.set_parameters("run-1", {"x": 1})
        store.get_parameters("run-1")["x"] = 99
        assert store.get_parameters("run-1") == {"x": 1}

    def test_run_config_merges(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.set_run_config("run-1", {"executor": {"service_name": "local"}})
        store.set_run_config("run-1", {"tag": "t"})
        assert store.get_run_config("run-1") == {"executor": {"service_name": "local"}, "tag": "t"}

    def test_status_update(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1", status=defaults.PROCESSING)
        store.update_run_log_status("run-1", defaults.SUCCESS)
        assert store.get_run_log_by_id("run-1").status == defaults.SUCCESS

    # ---- steps and branches --------------------------------------------------------------------
    def test_step_logs_round_trip_and_replace(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        step = _step("train", status=defaults.PROCESSING)
        store.add_step_log("run-1", step)
        step = store.get_step_log("run-1", "train")
        step.status = defaults.SUCCESS
        step.user_defined_metrics = {"accuracy": 0.9}
        step.add_data_catalogs([DataCatalog(name="model.pkl", data_hash="h", stage="put")])
        store.add_step_log("run-1", step)
        stored = store.get_step_log("run-1", "train")
        assert stored.status == defaults.SUCCESS
        assert stored.user_defined_metrics == {"accuracy": 0.9}
        assert [entry.name for entry in stored.data_catalog] == ["model.pkl"]
        assert list(store.get_run_log_by_id("run-1").steps) == ["train"]

    def test_unknown_step_is_not_found(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        with pytest.raises(StepLogNotFoundError):
            store.get_step_log("run-1", "nope")

    def test_nested_branches(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.add_step_log("run-1", _step("par", defaults.PROCESSING, "parallel"))
        store.add_branch_log("run-1", BranchLog(internal_name="par.a", status=defaults.PROCESSING))
        store.add_step_log("run-1", _step("par.a.inner", defaults.PROCESSING, "map"))
        store.add_branch_log("run-1", BranchLog(internal_name="par.a.inner.0.5", status=defaults.PROCESSING))
        store.add_step_log("run-1", _step("par.a.inner.0.5.work"))

        assert store.get_step_log("run-1", "par.a.inner.0.5.work").status == defaults.SUCCESS
        branch = store.get_branch_log("run-1", "par.a.inner.0.5")
        assert isinstance(branch, BranchLog)
        assert list(branch.steps) == ["par.a.inner.0.5.work"]
        assert store.get_branch_status("run-1", "par.a.inner.0.5") == defaults.PROCESSING

        # Updating a branch's status keeps the steps recorded in it.
        branch.status = defaults.SUCCESS
        store.add_branch_log("run-1", BranchLog(internal_name="par.a.inner.0.5", status=defaults.SUCCESS))
        branch = store.get_branch_log("run-1", "par.a.inner.0.5")
        assert branch.status == defaults.SUCCESS
        assert list(branch.steps) == ["par.a.inner.0.5.work"]
        assert store.get_branch_status("run-1", "par.a.inner.0.5") == defaults.SUCCESS

        run_log = store.get_run_log_by_id("run-1")
        assert list(run_log.steps["par"].branches) == ["par.a"]

    def test_step_status_update_keeps_the_rest(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        step = _step("m", defaults.PROCESSING, "map")
        step.user_defined_metrics = {"kept": 1}
        store.add_step_log("run-1", step)
        store.add_branch_log("run-1", BranchLog(internal_name="m.0", status=defaults.SUCCESS))
        store.add_step_log("run-1", _step("m.0.work"))

        settled = store.update_step_log_status("run-1", "m", defaults.FAIL, message="branch 1 failed")
        assert (settled.status, settled.message) == (defaults.FAIL, "branch 1 failed")
        stored = store.get_step_log("run-1", "m")
        assert (stored.status, stored.message, stored.user_defined_metrics) == (
            defaults.FAIL,
            "branch 1 failed",
            {"kept": 1},
        )
        assert list(stored.branches["m.0"].steps) == ["m.0.work"]
        with pytest.raises(StepLogNotFoundError):
            store.update_step_log_status("run-1", "nope", defaults.SUCCESS)

    def test_branch_statuses(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        store.add_step_log("run-1", _step("m", defaults.PROCESSING, "map"))
        assert store.get_branch_statuses("run-1", "m") == {}
        for value, status in (("0", defaults.SUCCESS), ("0.5", defaults.FAIL), ("x", defaults.PROCESSING)):
            store.add_branch_log("run-1", BranchLog(internal_name=f"m.{value}", status=status))
        store.add_step_log("run-1", _step("m.0.5.work", defaults.FAIL))
        assert store.get_branch_statuses("run-1", "m") == {
            "m.0": defaults.SUCCESS,
            "m.0.5": defaults.FAIL,
            "m.x": defaults.PROCESSING,
        }
        with pytest.raises(StepLogNotFoundError):
            store.get_branch_statuses("run-1", "nope")

    def test_unknown_branch_is_not_found(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1")
        with pytest.raises(BranchLogNotFoundError):
            store.get_branch_log("run-1", "par.a")
        with pytest.raises(BranchLogNotFoundError):
            store.get_branch_status("run-1", "par.a")

    def test_the_run_is_no_branch(self, store: BaseRunLogStore) -> None:
        """The run's own status has a method of its own; the empty branch name is no branch."""
        store.create_run_log("run-1", status=defaults.PROCESSING)
        with pytest.raises(BranchLogNotFoundError):
            store.get_branch_log("run-1", "")
        with pytest.raises(BranchLogNotFoundError):
            store.get_branch_status("run-1", "")
        with pytest.raises(BranchLogNotFoundError):
            store.update_branch_log_status("run-1", "", defaults.FAIL)
        assert store.get_run_log_by_id("run-1").status == defaults.PROCESSING

    def test_a_composite_step_is_recorded_with_its_branches(self, store: BaseRunLogStore) -> None:
        """One call records a fanned-out step and its branches; recording the step again keeps them."""
        store.create_run_log("run-1")
        fanned = _step("m", defaults.PROCESSING, "map")
        fanned.branches = {name: BranchLog(internal_name=name, status=defaults.PROCESSING) for name in ("m.1", "m.0.5")}
        store.add_step_log("run-1", fanned)
        assert store.get_branch_statuses("run-1", "m") == {"m.1": defaults.PROCESSING, "m.0.5": defaults.PROCESSING}
        store.add_step_log("run-1", _step("m.0.5.work"))
        store.update_branch_log_status("run-1", "m.0.5", defaults.SUCCESS)
        store.add_step_log("run-1", _step("m", defaults.SUCCESS, "map"))  # its own fields only
        stored = store.get_step_log("run-1", "m")
        assert stored.status == defaults.SUCCESS
        assert list(stored.branches) == ["m.1", "m.0.5"]
        assert list(stored.branches["m.0.5"].steps) == ["m.0.5.work"]
        assert stored.branches["m.0.5"].status == defaults.SUCCESS

    def test_a_step_of_a_branch_never_recorded_is_refused_and_the_log_still_reads(self, store: BaseRunLogStore) -> None:
        """A stray write (a step of a map item the map never had) is refused; nothing else is lost."""
        store.create_run_log("run-1")
        fanned = _step("m", defaults.PROCESSING, "map")
        fanned.branches = {"m.1": BranchLog(internal_name="m.1", status=defaults.PROCESSING)}
        store.add_step_log("run-1", fanned)
        with pytest.raises(BranchLogNotFoundError):
            store.add_step_log("run-1", _step("m.99.work"))
        with pytest.raises(StepLogNotFoundError):
            store.add_branch_log("run-1", BranchLog(internal_name="nope.1", status=defaults.PROCESSING))
        store.add_step_log("run-1", _step("m.1.work"))
        run_log = store.get_run_log_by_id("run-1")
        assert list(run_log.steps["m"].branches) == ["m.1"]
        assert list(run_log.steps["m"].branches["m.1"].steps) == ["m.1.work"]
        assert [summary.run_id for summary in store.list_runs().runs] == ["run-1"]

    # ---- the index of executed steps (cache keys, who put a content) ------------------------------
    def test_an_executed_step_is_found_by_its_cache_key_from_another_store_object(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        other = make_store if self.persistent else lambda: store  # a store of one process: that object
        store.create_run_log("run-1", status=defaults.PROCESSING)
        store.add_step_log("run-1", _executed("train", KEY_A, "10:00:00", puts=[HASH_X]))
        store.index_step("run-1", store.get_step_log("run-1", "train"))
        store.create_run_log("run-2", status=defaults.PROCESSING)
        # run-2 looked for the key (caching on) and missed: it takes the place of what was there
        store.add_step_log("run-2", _executed("train", KEY_A, "11:00:00", puts=[HASH_X], looked=True))
        store.index_step("run-2", store.get_step_log("run-2", "train"))
        found = other().cached_execution(KEY_A)
        assert found is not None and (found.run_id, found.step) == ("run-2", "train")
        assert found.time.endswith("11:00:00")
        assert other().cached_execution(KEY_B) is None

    def test_a_failed_or_reused_step_is_not_found_by_its_key(self, store: BaseRunLogStore) -> None:
        store.create_run_log("run-1", status=defaults.PROCESSING)
        failed = _executed("train", KEY_A, "10:00:00", status=defaults.FAIL)
        reused = _executed("evaluate", KEY_B, "10:00:00")
        assert reused.cache is not None
        reused.cache.reused_from = StepReference(run_id="run-0", step="evaluate")
        for step in (failed, reused):
            store.add_step_log("run-1", step)
            store.index_step("run-1", step)
        assert store.cached_execution(KEY_A) is None
        assert store.cached_execution(KEY_B) is None

    def test_the_steps_that_put_a_content_are_found_earliest_first(self, make_store: StoreFactory) -> None:
        store = make_store()
        other = make_store if self.persistent else lambda: store
        for run_id, time in (("later", "12:00:00"), ("first", "09:00:00")):
            store.create_run_log(run_id, status=defaults.PROCESSING)
            store.add_step_log(run_id, _step("fan", step_type="map"))
            store.add_branch_log(run_id, BranchLog(internal_name="fan.a", status=defaults.SUCCESS))
            step = _executed("fan.a.write", KEY_A, time, puts=[HASH_X, HASH_Y])
            store.add_step_log(run_id, step)
            store.index_step(run_id, step)
        found = other().producers(HASH_X)
        assert [(ref.run_id, ref.step) for ref in found] == [("first", "fan.a.write"), ("later", "fan.a.write")]
        assert other().producers(HASH_Z) == []
        assert other().producers("../../etc") == []

    # ---- finding runs ------------------------------------------------------------------------------
    def test_run_ids_are_every_run(self, store: BaseRunLogStore) -> None:
        assert store.run_ids() == []
        for run_id in ("run-b", "run-a", "run-c"):
            store.create_run_log(run_id)
        assert sorted(store.run_ids()) == ["run-a", "run-b", "run-c"]

    def test_runs_are_listed_newest_first_with_their_times(self, store: BaseRunLogStore) -> None:
        _timed_run(store, "older", defaults.SUCCESS, "exp", day=1)
        _timed_run(store, "newer", defaults.FAIL, "", day=3)
        store.create_run_log("starting", status=defaults.PROCESSING)  # no step began yet
        listed = store.list_runs().runs
        assert [summary.run_id for summary in listed] == ["starting", "newer", "older"]
        starting, newer, older = listed
        assert (older.status, older.tag) == (defaults.SUCCESS, "exp")
        assert older.start == datetime(2026, 3, 1, 10, 0, 0, 250000)
        assert older.end == datetime(2026, 3, 1, 10, 5)  # the map item inside the branch ended last
        assert str(older.duration) == "0:04:59.750000"
        assert (newer.status, newer.tag) == (defaults.FAIL, "")
        assert (starting.status, starting.start, starting.end, starting.duration) == (
            defaults.PROCESSING,
            None,
            None,
            None,
        )
        for summary in listed:  # a summary agrees with the run log it summarises
            assert summary == summarize(store.get_run_log_by_id(summary.run_id))

    def test_a_resumed_run_starts_when_it_resumed(self, store: BaseRunLogStore) -> None:
        """Steps reused from the run it resumes (``mock``, with what they hold) keep that run's times."""
        store.create_run_log("again", original_run_id="first", status=defaults.PROCESSING)
        reused = _step("fan", step_type="map")
        reused.mock = True
        reused.branches = {"fan.0": BranchLog(internal_name="fan.0", status=defaults.SUCCESS)}
        reused.branches["fan.0"].steps = {"fan.0.work": _step("fan.0.work")}
        reused.branches["fan.0"].steps["fan.0.work"].attempts = [
            StepAttempt(start_time="2026-03-01 09:00:00", end_time="2026-03-01 09:01:00")
        ]
        store.add_step_log("again", reused)
        rerun = _step("after")
        rerun.attempts = [StepAttempt(start_time="2026-03-02 12:00:00", end_time="2026-03-02 12:00:30")]
        store.add_step_log("again", rerun)
        store.update_run_log_status("again", defaults.SUCCESS)
        (summary,) = store.list_runs().runs
        assert (summary.start, summary.end) == (datetime(2026, 3, 2, 12), datetime(2026, 3, 2, 12, 0, 30))

    def test_listing_filters(self, store: BaseRunLogStore) -> None:
        _timed_run(store, "day1", defaults.SUCCESS, "exp", day=1)
        _timed_run(store, "day2", defaults.FAIL, "exp", day=2)
        _timed_run(store, "day3", defaults.SUCCESS, "other", day=3)

        def listed(**query: Any) -> list[str]:
            return [summary.run_id for summary in store.list_runs(RunQuery(**query)).runs]

        assert listed(status=defaults.SUCCESS) == ["day3", "day1"]
        assert listed(tag="exp") == ["day2", "day1"]
        assert listed(tag="exp", status=defaults.FAIL) == ["day2"]
        assert listed(since=datetime(2026, 3, 2)) == ["day3", "day2"]
        assert listed(since=datetime(2026, 3, 2, 10, 0, 1)) == ["day3"]
        assert listed(limit=2) == ["day3", "day2"]
        assert listed(tag="nobody") == []

    def test_a_summary_agrees_with_the_log_while_it_runs_and_once_it_ended(self, make_store: StoreFactory) -> None:
        """Stores may keep a summary of each run rather than read its log to list it: it must not go stale."""
        writer = make_store()
        reader = make_store() if self.persistent else writer

        def listed() -> RunSummary:
            (summary,) = reader.list_runs().runs
            assert summary == summarize(reader.get_run_log_by_id("run-1"))
            return summary

        writer.create_run_log("run-1", tag="t", status=defaults.PROCESSING)
        assert (listed().start, listed().end) == (None, None)
        first = _step("first", defaults.PROCESSING)
        first.attempts = [StepAttempt(start_time="2026-03-01 10:00:00", end_time="2026-03-01 10:00:05")]
        writer.add_step_log("run-1", first)
        assert (listed().start, listed().end) == (datetime(2026, 3, 1, 10), None)
        writer.update_run_log_status("run-1", defaults.SUCCESS)
        assert listed().end == datetime(2026, 3, 1, 10, 0, 5)
        writer.update_run_log_status("run-1", defaults.PROCESSING)  # run again (an engine's retry)
        later = _step("later")
        later.attempts = [StepAttempt(start_time="2026-03-01 11:00:00", end_time="2026-03-01 11:00:09")]
        writer.add_step_log("run-1", later)
        assert (listed().status, listed().end) == (defaults.PROCESSING, None)
        writer.update_run_log_status("run-1", defaults.FAIL)
        assert (listed().status, listed().end) == (defaults.FAIL, datetime(2026, 3, 1, 11, 0, 9))

    def test_an_unreadable_run_is_refused_in_one_line_and_left_out_of_listings(self, make_store: StoreFactory) -> None:
        """One spoilt run never hides the others, nor shows its content in the refusal."""
        store = make_store()
        _timed_run(store, "fine", defaults.SUCCESS, "", day=1)
        store.create_run_log("spoilt", status=defaults.PROCESSING)
        store.add_step_log("spoilt", _step("first"))
        store.add_step_log("spoilt", _step("second"))
        self.spoil_step(store, "spoilt", "first")
        reader = make_store()
        with pytest.raises(RunLogUnreadableError) as raised:
            reader.get_run_log_by_id("spoilt")
        message = str(raised.value)
        assert message.startswith(f"run 'spoilt': its run log in {reader.location('spoilt')} is not readable: ")
        assert "\n" not in message and len(message) < 400
        listing = reader.list_runs()
        assert [summary.run_id for summary in listing.runs] == ["fine"]
        assert [str(error) for error in listing.unreadable] == [message]
        assert reader.get_run_log_by_id("fine").status == defaults.SUCCESS

    # ---- persistence and concurrency -----------------------------------------------------------
    def test_another_store_object_sees_everything(self, make_store: StoreFactory) -> None:
        if not self.persistent:
            pytest.skip("this store keeps run logs in its own memory only")
        writer = make_store()
        writer.create_run_log("run-1", status=defaults.PROCESSING)
        writer.set_parameters("run-1", {"x": 1})
        writer.add_step_log("run-1", _step("par", defaults.PROCESSING, "parallel"))
        writer.add_branch_log("run-1", BranchLog(internal_name="par.a", status=defaults.SUCCESS))
        writer.add_step_log("run-1", _step("par.a.work"))
        reader = make_store()
        run_log = reader.get_run_log_by_id("run-1")
        assert run_log.parameters == {"x": 1}
        assert run_log.steps["par"].branches["par.a"].steps["par.a.work"].status == defaults.SUCCESS
        writer.update_run_log_status("run-1", defaults.SUCCESS)
        assert make_store().get_run_log_by_id("run-1").status == defaults.SUCCESS

    def test_a_reader_sees_later_writes(self, make_store: StoreFactory) -> None:
        if not self.persistent:
            pytest.skip("this store keeps run logs in its own memory only")
        writer, reader = make_store(), make_store()
        writer.create_run_log("run-1")
        assert reader.get_run_log_by_id("run-1").steps == {}
        writer.add_step_log("run-1", _step("a"))
        assert list(reader.get_run_log_by_id("run-1").steps) == ["a"]

    def test_concurrent_writers_lose_nothing(self, make_store: StoreFactory) -> None:
        if not self.concurrent_writers:
            pytest.skip("this store does not promise concurrent writers")
        writers, steps = 6, 25
        store = make_store()
        store.create_run_log("run-1", status=defaults.PROCESSING)
        store.add_step_log("run-1", _step("map", defaults.PROCESSING, "map"))
        context = multiprocessing.get_context("fork")
        processes = [
            context.Process(target=_write_branch, args=(make_store, "run-1", f"map.{number}", steps))
            for number in range(writers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
        run_log = make_store().get_run_log_by_id("run-1")
        branches = run_log.steps["map"].branches
        assert sorted(branches) == sorted(f"map.{number}" for number in range(writers))
        for branch in branches.values():
            assert branch.status == defaults.SUCCESS
            assert len(branch.steps) == steps

    def test_a_run_id_is_claimed_by_one_process_only(self, make_store: StoreFactory) -> None:
        """Processes creating the same run id at once: exactly one wins, the others are refused."""
        if not self.concurrent_writers:
            pytest.skip("this store is used by one process only")
        claimants = 8
        context = multiprocessing.get_context("fork")
        for round_number in range(4):
            run_id = f"claimed-{round_number}"
            start = context.Barrier(claimants)
            processes = [context.Process(target=_claim, args=(make_store, run_id, start)) for _ in range(claimants)]
            for process in processes:
                process.start()
            for process in processes:
                process.join(60)
            exit_codes = sorted(-1 if process.exitcode is None else process.exitcode for process in processes)
            assert exit_codes == [0] + [3] * (claimants - 1), (
                f"round {round_number}: exit codes {exit_codes} (0 won, 3 refused, 1 failed, -1 still running)"
            )
            assert make_store().get_run_log_by_id(run_id).status == defaults.PROCESSING

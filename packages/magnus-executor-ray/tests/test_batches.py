"""How many branches a Ray task walks: one until branches are seen to end, then what fills the target."""

from __future__ import annotations

from magnus_executor_ray.batches import BATCHES_PER_SLOT, IN_FLIGHT_PER_SLOT, TARGET_SECONDS, BatchSizer


def test_a_branch_of_unknown_duration_is_walked_alone() -> None:
    assert BatchSizer().next_size(1000, slots=4) == 1


def test_short_branches_fill_the_target_duration() -> None:
    sizer = BatchSizer()
    sizer.observe(seconds=0.004, branches=2)  # 2 ms a branch
    assert sizer.next_size(100_000, slots=4) == int(TARGET_SECONDS / 0.002)


def test_long_branches_stay_one_per_task() -> None:
    sizer = BatchSizer()
    sizer.observe(seconds=30.0, branches=1)
    assert sizer.next_size(1000, slots=4) == 1


def test_the_last_branches_are_shared_by_every_slot() -> None:
    """However short the branches, each slot gets BATCHES_PER_SLOT batches of what is left."""
    sizer = BatchSizer()
    sizer.observe(seconds=0.0001, branches=100)
    assert sizer.next_size(160, slots=4) == 160 // (4 * BATCHES_PER_SLOT)
    assert sizer.next_size(3, slots=4) == 1


def test_the_estimate_follows_the_latest_batches() -> None:
    sizer = BatchSizer()
    sizer.observe(seconds=0.01, branches=10)  # 1 ms
    sizer.observe(seconds=0.5, branches=10)  # 50 ms: the branches got longer
    assert sizer.seconds_per_branch is not None and 0.02 < sizer.seconds_per_branch < 0.05
    assert sizer.next_size(10_000, slots=1) <= 5


def test_nothing_waiting_makes_no_batch_and_batches_in_flight_follow_the_slots() -> None:
    assert BatchSizer().next_size(0, slots=4) == 0
    assert BatchSizer.in_flight(4) == 4 * IN_FLIGHT_PER_SLOT
    assert BatchSizer.in_flight(0) == IN_FLIGHT_PER_SLOT

"""How many branches one Ray task walks: one at first, more once branches are seen to be short.

Ray spends about a millisecond of its own on every task (scheduling, a worker's round trip). A
map of thousands of branches taking a few milliseconds each would pay that on every item, so
the branches a composite hands over at once are submitted in batches, one task walking each
batch's branches in turn, as joblib's ``batch_size="auto"`` does:

- the first tasks walk one branch each, so a branch that takes minutes is never queued behind
  another in one task;
- once branches are seen to end, a batch holds as many as fill :data:`TARGET_SECONDS`, and
  never so many that fewer than :data:`BATCHES_PER_SLOT` batches are left for each task slot of
  the cluster (the last batches end together);
- at most :data:`IN_FLIGHT_PER_SLOT` batches per slot are submitted at a time: Ray still has work
  queued for every slot that frees, and what is not submitted yet can join bigger batches.
"""

from __future__ import annotations

import math
from typing import Optional

# What a batch should last: Ray's own cost per task is then about 1% of it.
TARGET_SECONDS = 0.1
# Batches left per task slot, at least, for what is still to submit.
BATCHES_PER_SLOT = 4
# Batches submitted per task slot at a time.
IN_FLIGHT_PER_SLOT = 2
# How much the latest batch counts in the estimate of a branch's duration.
_LATEST_WEIGHT = 0.5


class BatchSizer:
    """The size of the next batch, from the durations of the branches that ended."""

    def __init__(self) -> None:
        self.seconds_per_branch: Optional[float] = None

    def observe(self, seconds: float, branches: int) -> None:
        """A batch of ``branches`` took ``seconds`` in its worker."""
        if branches <= 0:
            return
        latest = max(seconds, 0.0) / branches
        known = self.seconds_per_branch
        self.seconds_per_branch = latest if known is None else known + _LATEST_WEIGHT * (latest - known)

    def next_size(self, waiting: int, slots: int) -> int:
        """How many of the ``waiting`` branches the next task walks, on a cluster of ``slots`` task slots."""
        if waiting <= 0:
            return 0
        seconds = self.seconds_per_branch
        if seconds is None:
            return 1
        filling = int(TARGET_SECONDS / seconds) if seconds > 0 else waiting
        balanced = math.ceil(waiting / (max(slots, 1) * BATCHES_PER_SLOT))
        return max(1, min(filling, balanced, waiting))

    @staticmethod
    def in_flight(slots: int) -> int:
        """Batches to keep submitted on a cluster of ``slots`` task slots."""
        return max(slots, 1) * IN_FLIGHT_PER_SLOT


__all__ = ["BATCHES_PER_SLOT", "IN_FLIGHT_PER_SLOT", "TARGET_SECONDS", "BatchSizer"]

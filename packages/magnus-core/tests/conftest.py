"""Shared fixtures of magnus-core's tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from magnus.runtime import current
from magnus.testing.signals import restore_ctrl_c

restore_ctrl_c()  # the interrupt tests send Ctrl-C, even when the run started with it ignored


@pytest.fixture(autouse=True)
def no_leftover_step() -> Iterator[None]:
    """Each test starts outside any step, whatever the previous one left (an interactive session)."""
    current.enter(None)
    yield
    current.enter(None)

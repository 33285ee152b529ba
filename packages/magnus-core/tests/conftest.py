"""Shared fixtures of magnus-core's tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from magnus.runtime import current


@pytest.fixture(autouse=True)
def no_leftover_step() -> Iterator[None]:
    """Each test starts outside any step, whatever the previous one left (an interactive session)."""
    current.enter(None)
    yield
    current.enter(None)

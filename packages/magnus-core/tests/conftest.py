"""Shared fixtures of magnus-core's tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from magnus import context


@pytest.fixture(autouse=True)
def no_leftover_run_context() -> Iterator[None]:
    """Each test starts outside any run, whatever the previous one left."""
    context.set_current(None)
    yield
    context.set_current(None)

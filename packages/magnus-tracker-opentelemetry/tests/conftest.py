"""A real OTLP/HTTP receiver on 127.0.0.1 for the tests that export over the network."""

from __future__ import annotations

from typing import Iterator

import pytest
from spans import Receiver, receiver


@pytest.fixture
def otlp() -> Iterator[Receiver]:
    yield from receiver()

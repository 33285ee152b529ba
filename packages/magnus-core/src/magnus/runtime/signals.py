"""SIGTERM taken as Ctrl-C: ``kill``, a stopped container or pod, ``scancel`` end a run as an interrupt does.

Within :func:`sigterm_interrupts` SIGTERM raises ``KeyboardInterrupt`` in the main thread, so a step
running in this process records itself ``interrupted``, the walk cancels what is in flight, and
the run ends FAIL (exit 130 on the command line). Processes forked within it (a pool's workers)
inherit the handler. Outside the main thread (where Python cannot set handlers) it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Iterator, Optional


def raise_interrupt(signum: int, frame: Optional[FrameType]) -> None:
    """A signal handler raising ``KeyboardInterrupt``."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM interrupts as Ctrl-C does; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

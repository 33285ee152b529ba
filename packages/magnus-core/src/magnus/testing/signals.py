"""Ctrl-C in tests as a terminal delivers it, whatever started the test run.

A shell without job control starts a background command with SIGINT ignored, and an ignored
signal stays ignored across ``exec``: a test run started that way (a CI script run with ``&``)
would see no ``KeyboardInterrupt`` itself, and the magnus processes it starts would ignore the
Ctrl-C a test sends them. Suites testing interrupts call ``restore_ctrl_c`` first.
"""

from __future__ import annotations

import signal


def restore_ctrl_c() -> None:
    """Give SIGINT Python's own handler back when it was inherited ignored.

    Processes started afterwards get the default disposition (a handler, unlike an ignore, is
    reset by ``exec``), so a Python process among them turns Ctrl-C into ``KeyboardInterrupt``.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

"""Ctrl-C that is not lost: SIGINT raised again until the command's handler has seen it.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside a
garbage-collector callback (JAX registers one) or a ``__del__`` it is printed as "Exception
ignored" and dropped, and the command would run to its end and write its output. While
`catching_interrupts` is active, SIGINT raises as usual and also re-sends itself after
``RESEND_S`` until `handled` is called, so a dropped interrupt comes back a moment later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

RESEND_S = 0.2

_pending = threading.Event()


def _resend() -> None:
    if _pending.is_set():
        os.kill(os.getpid(), signal.SIGINT)


def _on_sigint(signum: int, frame: Any) -> None:
    _pending.set()
    threading.Timer(RESEND_S, _resend).start()
    raise KeyboardInterrupt


def handled() -> None:
    """The interrupt reached its handler: stop re-sending it."""
    _pending.clear()


@contextlib.contextmanager
def catching_interrupts() -> Iterator[None]:
    """SIGINT handled as above for the block (main thread only; elsewhere nothing changes),
    the previous handler restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        handled()
        signal.signal(signal.SIGINT, previous)

"""Ctrl-C that is not lost: SIGINT raised again until the command's handler has seen it.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside a
garbage-collector callback (JAX registers one) or a ``__del__`` it is printed as "Exception
ignored" and dropped, and the command would run to its end and write its output. While
`catching_interrupts` is active, SIGINT raises unless it landed in such a place (a function of
``gc.callbacks`` or a ``__del__`` on the stack), and re-sends itself after ``RESEND_S`` until
`handled` is called, so an interrupt that could not be raised comes back a moment later.
"""

from __future__ import annotations

import contextlib
import gc
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


def _dropped_here(frame: Any) -> bool:
    """Whether an exception raised at ``frame`` would be dropped: a gc callback or a
    ``__del__`` is running."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum: int, frame: Any) -> None:
    _pending.set()
    threading.Timer(RESEND_S, _resend).start()
    if not _dropped_here(frame):
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

"""Ctrl-C that is not lost, and that does not break the cleanup it starts.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside a
garbage-collector callback (JAX registers one) or a ``__del__`` it is printed as "Exception
ignored" and dropped, and the command would run to its end and write its output. While
`catching_interrupts` is active, SIGINT raises unless it landed in such a place (a function of
``gc.callbacks`` or a ``__del__`` on the stack), and re-sends itself after ``RESEND_S`` until
`handled` is called, so an interrupt that could not be raised comes back a moment later.

An interrupt on its way out (the main thread runs an ``except`` or ``finally`` of a
``KeyboardInterrupt``: closing files, shutting Ray down) is neither re-sent nor raised again
by a second Ctrl-C: raised there, it would stop that cleanup halfway (a Ray driver whose
shutdown is cut off is ended by Ray's own threads with status 1). `shielded` holds SIGINT off
for a block that must not stop halfway and raises it after.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

RESEND_S = 0.2

_pending = threading.Event()


def _arm() -> None:
    # a daemon: a timer still waiting must not hold the interpreter's exit
    timer = threading.Timer(RESEND_S, _resend)
    timer.daemon = True
    timer.start()


def _resend() -> None:
    if not _pending.is_set():
        return
    if _unwinding():
        _arm()  # the interrupt is on its way out: look again once its cleanup is done
        return
    os.kill(os.getpid(), signal.SIGINT)


def _unwinding() -> bool:
    """Whether the main thread runs an ``except`` / ``finally`` of a ``KeyboardInterrupt``."""
    current = getattr(sys, "_current_exceptions", None)
    if current is None:
        return False
    exc = current().get(threading.main_thread().ident)
    if isinstance(exc, tuple):  # Python < 3.12: (type, value, traceback)
        exc = exc[1]
    return isinstance(exc, KeyboardInterrupt)


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
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # already stopping (see the module docstring)
    _pending.set()
    _arm()
    if not _dropped_here(frame):
        raise KeyboardInterrupt


def handled() -> None:
    """The interrupt reached its handler: stop re-sending it."""
    _pending.clear()


@contextlib.contextmanager
def catching_interrupts(*, final: bool = False) -> Iterator[None]:
    """SIGINT handled as above for the block (main thread only; elsewhere nothing changes),
    the previous handler restored after.

    Args:
        final: the process ends after the block (the command line): once an interrupt has
            left the block, SIGINT is ignored instead, so that a second Ctrl-C cannot break
            the exit with a traceback (Python joining threads, Ray's exit handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    interrupted = False
    try:
        yield
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        handled()
        signal.signal(signal.SIGINT, signal.SIG_IGN if final and interrupted else previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """SIGINT held off for the block (work that must not stop halfway, such as shutting Ray
    down) and raised as ``KeyboardInterrupt`` when it ends, unless one is already on its
    way out. Main thread only; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
        raise KeyboardInterrupt

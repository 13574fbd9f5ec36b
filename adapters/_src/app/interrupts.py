"""Ctrl-C, once and never lost: SIGINT raised once, raised again only where Python dropped it.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Inside a
garbage-collector callback (JAX registers one), a ``__del__`` or a weakref callback it is
passed to ``sys.unraisablehook`` ("Exception ignored in ...") and dropped, and the command
would run to its end and write its output. While `catching_interrupts` is active:

- SIGINT raises ``KeyboardInterrupt``; a dropped one reaches our ``sys.unraisablehook``,
  which prints nothing and sends SIGINT again `RESEND_S` later, so it is raised at the next
  place that can raise;
- a second SIGINT within `REPEAT_IGNORED_S` of the first is ignored: the first is unwinding
  (closing the loader's thread, removing temp files, stopping Ray), and raising into that
  cleanup would cut it short. One after that raises again (something swallowed the first).

`shielded` holds SIGINT off for a block that must not stop halfway (starting or shutting Ray
down: a driver whose shutdown is cut off is ended by Ray's own threads with status 1) and
raises it when the block ends. ``catching_interrupts(final=True)`` is for the command line,
whose process ends after the block: once an interrupt has left it, SIGINT is ignored, so a
late Ctrl-C cannot break the exit with a traceback (Python joining threads, Ray's exit hooks).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

REPEAT_IGNORED_S = 2.0
#: delay before a dropped interrupt is sent again
RESEND_S = 0.05

#: set while a `catching_interrupts` block runs
_active = threading.Event()

#: when the last KeyboardInterrupt was raised (None: not since the block began)
_raised_at: list[float | None] = [None]


def _on_sigint(signum: int, frame: Any) -> None:
    last = _raised_at[0]
    now = time.monotonic()
    if last is not None and now - last < REPEAT_IGNORED_S:
        return  # the first one is still unwinding
    _raised_at[0] = now
    raise KeyboardInterrupt


def _resend() -> None:
    if _active.is_set():
        os.kill(os.getpid(), signal.SIGINT)


def _on_unraisable(previous: Any) -> Any:
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # dropped where it landed: raise it again, from outside this hook (a signal sent
            # from here would be handled, and dropped, inside it)
            _raised_at[0] = None
            timer = threading.Timer(RESEND_S, _resend)
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    return hook


def interrupted() -> bool:
    """Whether a Ctrl-C was raised in the current `catching_interrupts` block."""
    return _raised_at[0] is not None


@contextlib.contextmanager
def catching_interrupts(*, final: bool = False) -> Iterator[None]:
    """SIGINT handled as above for the block (main thread only; elsewhere nothing changes),
    the previous handler and ``sys.unraisablehook`` restored after.

    Args:
        final: the process ends after the block: once an interrupt has left it, SIGINT is
            ignored instead of restored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _raised_at[0] = None
    previous = signal.signal(signal.SIGINT, _on_sigint)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _on_unraisable(previous_hook)
    _active.set()
    try:
        yield
    finally:
        _active.clear()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGINT, signal.SIG_IGN if final and interrupted() else previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """SIGINT held off for the block and raised as ``KeyboardInterrupt`` when it ends, unless
    one is already on its way out. Main thread only; elsewhere nothing changes."""
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
        _raised_at[0] = time.monotonic()
        raise KeyboardInterrupt

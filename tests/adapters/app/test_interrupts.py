"""Ctrl-C in the command line (adapters._src.app.interrupts): an interrupt on its way out lets
its cleanup finish (neither re-sent nor raised again by a second Ctrl-C), `shielded` holds
one off until its block ends, and after a final block a late Ctrl-C is ignored."""

from __future__ import annotations

import os
import signal
import time

import pytest

from adapters._src.app import interrupts


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)  # the handler runs at the next bytecode; the sleep is where it lands


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)


def test_cleanup_of_an_interrupt_is_not_cut_off():
    """The re-send (after RESEND_S) and a second Ctrl-C both arrive while the first one's
    cleanup runs: the cleanup still finishes, and one KeyboardInterrupt leaves the block."""
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts.catching_interrupts():
        try:
            _ctrl_c()
        finally:
            _busy(3 * interrupts.RESEND_S)  # past the re-send
            os.kill(os.getpid(), signal.SIGINT)  # the user's second Ctrl-C
            _busy(0.2)
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_shielded_holds_ctrl_c_until_the_block_ends():
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts.catching_interrupts():
        with interrupts.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            _busy(0.3)
            steps.append("shielded block done")
        steps.append("after")  # not reached: the held Ctrl-C is raised here
    assert steps == ["shielded block done"]
    # nothing held: nothing raised
    with interrupts.shielded():
        _busy(0.05)


def test_final_block_ignores_ctrl_c_once_interrupted():
    """The command line's block is final: a Ctrl-C after the first one (Python joining
    threads, Ray's exit handlers) must not print a traceback."""
    try:
        with pytest.raises(KeyboardInterrupt), interrupts.catching_interrupts(final=True):
            _ctrl_c()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        _busy(0.1)  # ignored: nothing raised
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # a final block that ends normally restores the previous handler
    with interrupts.catching_interrupts(final=True):
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

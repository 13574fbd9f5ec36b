"""Value types of the command line's flags: each checks one value while argparse reads it, so a
bad value is one line and exit status 2 before any framework is imported or a backbone built.

Each is a function from the text given to the value (argparse's ``type=``); a bad value raises
`argparse.ArgumentTypeError` saying what was expected and what was got.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

#: the largest seed every consumer takes (JAX's PRNG key and NumPy's generator: 32 bits)
MAX_SEED = 2**32 - 1
#: how much of a bad value an error repeats (a pasted file must not come back whole)
ECHO_CHARS = 60


def _echo(text: str) -> str:
    shown = text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "..."
    return repr(shown)


def _int(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {_echo(text)}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (``--image-size``, ``--batch-size``, ``--limit``, ``--epochs``)."""
    value = _int(text, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def seed(text: str) -> int:
    """An integer in ``[0, MAX_SEED]`` (``--seed``)."""
    value = _int(text, f"an integer from 0 to {MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {value}")
    return value


def _float(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {_echo(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text.strip()}")
    return value


def finite_float(text: str) -> float:
    """A finite number (``--mean``)."""
    return _float(text, "a finite number")


def positive_float(text: str) -> float:
    """A finite number > 0 (``--lr``, ``--std``)."""
    value = _float(text, "a finite number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (``--gpus-per-worker``)."""
    value = _float(text, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value:g}")
    return value


def file_with_suffix(suffix: str) -> Callable[[str], str]:
    """A file name ending in ``suffix`` (``export --out``: ``.onnx``), case as given."""

    def check(text: str) -> str:
        path = Path(text)
        if path.suffix != suffix:
            named = path.name not in ("", "..")
            fixed = str(path.with_suffix(suffix)) if named else str(path / f"model{suffix}")
            raise argparse.ArgumentTypeError(
                f"expected a file name ending in {suffix}, got {_echo(text)}; name it {fixed!r}"
            )
        return text

    check.__name__ = f"file_with_suffix({suffix!r})"
    return check

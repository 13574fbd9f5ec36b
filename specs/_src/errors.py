"""The one error type of `specs`: what was wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class SpecError(ValueError):
    """An invalid spec: names the field path, what was expected, what was got, and the fix.

    Attributes:
        path: dotted field path, e.g. ``backbone.init_args.model_kwargs.out_indices``.
        expected: what the field accepts.
        got: the offending value.
    """

    def __init__(
        self,
        path: str,
        expected: str,
        got: Any = None,
        *,
        choices: Iterable[str] | None = None,
        hint: str | None = None,
        show_got: bool = True,
    ) -> None:
        self.path = path or "<root>"
        self.expected = expected
        self.got = got
        self.choices = tuple(choices) if choices is not None else None
        parts = [f"{self.path}: expected {expected}"]
        if show_got:
            parts.append(f"got {describe(got)}")
        message = ", ".join(parts) + "."
        if self.choices is not None and isinstance(got, str):
            close = difflib.get_close_matches(got, self.choices, n=3, cutoff=0.5)
            if close:
                message += f" Did you mean {' or '.join(repr(c) for c in close)}?"
        if self.choices:
            shown = sorted(self.choices)
            tail = "" if len(shown) <= 20 else f", ... ({len(shown) - 20} more)"
            message += f" Valid choices: {', '.join(shown[:20])}{tail}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


def describe(value: Any) -> str:
    """``repr`` of a value with its type, shortened for messages."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def join(path: str, key: str | int) -> str:
    """Extend a dotted field path: ``join("a.b", "c") == "a.b.c"``, ``join("a", 0) == "a[0]"``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key

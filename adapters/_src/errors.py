"""The library's errors: `BuildError`, the one exception `adapters.build` raises for a spec
that cannot be built (and its `ArgumentError`), and `ParityError`, a runtime's first-build
check failing."""

from __future__ import annotations

from typing import Any

from specs.internal import clean_message, shorten

_UNSET: Any = object()


class BuildError(ValueError):
    """A spec that cannot become an adapter: names the spec field, what went wrong, and the fix.

    Attributes:
        field: the spec field (or argument) at fault, e.g. ``checkpoint_path`` or
            ``model_kwargs.out_indices``.
        problem: what went wrong, in one sentence.
    """

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        expected: str | None = None,
        got: Any = _UNSET,
        fix: str | None = None,
    ) -> None:
        self.field = field
        self.problem = problem
        parts = [f"{field}: {problem.rstrip('.')}."]
        if expected is not None:
            parts.append(f"Expected {expected.rstrip('.')}.")
        if got is not _UNSET:
            parts.append(f"Got {_describe(got)}.")
        if fix:
            parts.append(fix if fix.endswith(".") else fix + ".")
        # what the message echoes (names, paths, URLs) is shortened and its credentials hidden
        super().__init__(clean_message(" ".join(parts)))


class ArgumentError(BuildError, TypeError):
    """Arguments from the spec (``init_args``, ``arguments``, ``model_kwargs``) that the
    class or factory does not accept.

    Also a `TypeError`, as the same call made directly (and eva's wrappers) would raise, so
    code that catches `TypeError` keeps working; ``field`` still names the spec field.
    """


class ParityError(RuntimeError):
    """A runtime's output (an ONNX export, a JAX lowering) does not reproduce the torch
    backbone within tolerance on its first-build check; nothing was cached."""


def _describe(value: Any) -> str:
    return f"{shorten(repr(value), 100)} ({type(value).__name__})"

"""Checks for `adapters.transforms`: arguments once, when a transform is made; inputs on
each call. Every error names the transform (``where``), what was expected, what was got,
and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .ops import ARRAY_KINDS, framework_of, shape_of

# ---------------------------------------------------------------------------------------------
# arguments (factory time)
# ---------------------------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(where: str, name: str, value: Any, minimum: int | None = None) -> None:
    """Raise TypeError unless ``value`` is an integer (>= ``minimum`` when given)."""
    if not is_int(value) or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise TypeError(
            f"{where}: argument {name!r} must be {expected}, got {value!r} "
            f"({type(value).__name__})."
        )


def check_bool(where: str, name: str, value: Any) -> None:
    """Raise TypeError unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise TypeError(
            f"{where}: argument {name!r} must be True or False, got {value!r} "
            f"({type(value).__name__})."
        )


def check_number(
    where: str, name: str, value: Any, *, optional: bool = False, minimum: float | None = None
) -> None:
    """Raise TypeError unless ``value`` is an int or float (>= ``minimum`` when given; or
    None, when ``optional``)."""
    if optional and value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (minimum is not None and value < minimum)
    ):
        expected = "a number" if minimum is None else f"a number >= {minimum}"
        raise TypeError(
            f"{where}: argument {name!r} must be {expected}{' or None' if optional else ''}, "
            f"got {value!r} ({type(value).__name__})."
        )


def check_name_or_index(where: str, name: str, value: Any) -> None:
    """Raise TypeError unless ``value`` is a non-empty string or an integer."""
    if not (is_int(value) or (isinstance(value, str) and value)):
        raise TypeError(
            f"{where}: argument {name!r} must be a field name (non-empty string) or an index "
            f"(integer), got {value!r} ({type(value).__name__})."
        )


def indices_of(where: str, indices: Any) -> tuple[int, ...]:
    """An index or a non-empty sequence of them, as a tuple; TypeError otherwise."""
    chosen = (indices,) if is_int(indices) else indices
    if not (
        isinstance(chosen, Sequence)
        and not isinstance(chosen, str)
        and len(chosen) > 0
        and all(is_int(i) for i in chosen)
    ):
        raise TypeError(
            f"{where}: argument 'indices' must be an integer or a non-empty list of integers, "
            f"got {indices!r} ({type(indices).__name__})."
        )
    return tuple(chosen)


# ---------------------------------------------------------------------------------------------
# inputs (call time)
# ---------------------------------------------------------------------------------------------


def framework(x: Any, where: str, accepted: str = ARRAY_KINDS) -> str:
    """The framework of an array input (``"torch"``, ``"jax"``, ``"numpy"``); TypeError else."""
    fw = framework_of(x)
    if fw is None:
        raise TypeError(f"{where}: expected {accepted}, got {type(x).__qualname__}.")
    return fw


def tokens(x: Any, where: str) -> tuple[Any, str]:
    """Unwrap a model output to its (batch, tokens, dim) array and name its framework.

    A ``transformers`` output object (anything with ``last_hidden_state``) is unwrapped, as
    eva's extractors do; duck typing keeps ``transformers`` out of the import graph.

    Raises:
        TypeError: ``x`` is not an array of a supported framework.
        ValueError: the array is not 3-D.
    """
    fw = framework_of(x)
    if fw is None and hasattr(x, "last_hidden_state"):
        x = x.last_hidden_state
        fw = framework_of(x)
    if fw is None:
        raise TypeError(
            f"{where}: expected {ARRAY_KINDS} of shape (batch, tokens, dim), or a model output "
            f"with a .last_hidden_state, got {type(x).__module__}.{type(x).__qualname__}."
        )
    if x.ndim != 3:
        raise ValueError(
            f"{where}: expected token embeddings of shape (batch, tokens, dim), got shape "
            f"{shape_of(x)} ({x.ndim}-D). A 2-D (batch, dim) input is already pooled: drop this "
            "transform; a (batch, channels, h, w) feature map has no tokens to pick."
        )
    return x, fw


def axis_index(where: str, axis: int, shape: tuple[int, ...]) -> int:
    """``axis`` as a non-negative index into ``shape``, or an IndexError naming the shape."""
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise IndexError(
            f"{where}: axis {axis} is out of range for an input of shape {shape} ({ndim}-D); "
            f"expected an axis in [{-ndim}, {ndim - 1}]."
        )
    return axis % ndim


def cls_tokens(
    where: str,
    shape: tuple[int, ...],
    index: int,
    num_register_tokens: int,
    include_patch_mean: bool,
) -> None:
    """(batch, tokens, dim) has a token at ``index`` and, for the patch mean, patch tokens
    after the CLS and ``num_register_tokens`` register tokens.

    Raises:
        IndexError: ``index`` is out of range for the token count.
        ValueError: no patch tokens remain for the mean.
    """
    num_tokens = shape[1]
    if not -num_tokens <= index < num_tokens:
        raise IndexError(
            f"{where}: CLS index {index} is out of range for {num_tokens} tokens; expected "
            f"shape (batch, tokens > {index if index >= 0 else -index - 1}, dim), got {shape}."
        )
    start = 1 + num_register_tokens
    if include_patch_mean and num_tokens <= start:
        raise ValueError(
            f"{where}: include_patch_mean needs patch tokens after the CLS and "
            f"{num_register_tokens} register tokens; expected shape (batch, tokens > {start}, "
            f"dim), got {shape}. Check num_register_tokens."
        )


def patch_start(where: str, shape: tuple[int, ...], skip: int) -> int:
    """The first patch token of (batch, tokens, dim) after ``skip`` CLS / register tokens.

    Raises:
        ValueError: no token is left after them.
    """
    if shape[1] <= skip:
        raise ValueError(
            f"{where}: expected patch tokens after the {skip} leading CLS/register tokens, i.e. "
            f"shape (batch, tokens > {skip}, dim), got {shape}. Check has_cls_token and "
            "num_register_tokens."
        )
    return skip


def square_grid(
    where: str, shape: tuple[int, ...], skip: int, ignore_remaining: bool
) -> tuple[int, int]:
    """``(start, side)``: the patch tokens ``x[:, start:]`` form a ``side`` x ``side`` grid.

    With ``ignore_remaining``, a non-square count keeps the last ``isqrt(n) ** 2`` tokens.

    Raises:
        ValueError: no patch tokens, or (without ``ignore_remaining``) not a square number.
    """
    num_tokens = shape[1]
    start = patch_start(where, shape, skip)
    num_patches = num_tokens - start
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        if not ignore_remaining:
            lo, hi = side * side, (side + 1) ** 2
            raise ValueError(
                f"{where}: {num_patches} patch tokens (of {num_tokens} tokens, shape {shape}) "
                f"do not form a square grid; expected {skip} + a square number of tokens "
                f"such as {skip + lo} or {skip + hi}. Check has_cls_token and "
                "num_register_tokens, or pass ignore_remaining=True to keep the last "
                f"{lo} tokens as eva does."
            )
        start = num_tokens - side * side
    return start, side


def single_channel(where: str, shape: tuple[int, ...], axis: int, dim: int) -> None:
    """Labels for ``to_onehot``: size 1 at ``axis``; ValueError naming the shape otherwise."""
    if shape[axis] != 1:
        raise ValueError(
            f"{where}: to_onehot expects labels with a single channel at dim {dim}, i.e. "
            f"shape {(*shape[:axis], 1, *shape[axis + 1 :])}, got {shape}. Pass "
            "argmax=True to take the argmax over that axis first."
        )

"""Helpers the op families share: optional dtype arguments, low-precision accumulation,
ATen's reduction dims, per-axis arguments and slice bounds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import torch

from interop._src.dtypes import jax_dtype

#: ATen's "no bound" (``x[a:]`` records ``end=INT64_MAX``): an int no real size reaches
INT64_MAX = 2**63 - 1


def as_dtype(dtype: torch.dtype | None) -> Any:
    """The JAX dtype of an op's optional ``dtype=`` argument (None stays None)."""
    return None if dtype is None else jax_dtype(dtype)


def low(x: Any) -> bool:
    """Whether ``x`` is a low-precision float (bfloat16, float16)."""
    return getattr(x, "dtype", None) in (jnp.bfloat16, jnp.float16)


def up(x: jax.Array) -> jax.Array:
    """float32 for the low-precision floats (torch's CPU accumulation type), else x."""
    return x.astype(jnp.float32) if low(x) else x


def axes(dim: int | Sequence[int] | None) -> tuple[int, ...] | None:
    """ATen's reduction dims: None or [] mean all axes."""
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        return None
    return (dim,) if isinstance(dim, int) else tuple(dim)


def tup(v: int | Sequence[int], n: int) -> tuple[int, ...]:
    """A per-spatial-axis argument (``stride=2``, ``[2]``, ``[2, 3]``) as ``n`` ints."""
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    return v * n if len(v) == 1 else v


def _bound(i, size, default):
    """One ATen slice bound: None -> default, negative wraps, then clamped to ``[0, size]``.

    Written with ``jax.core.max_dim`` / ``min_dim`` so that it holds on a symbolic size (the
    batch axis under ``jax.export``), where ``INT64_MAX`` would overflow JAX's int32 dims.
    """
    if i is None:
        return default
    if isinstance(i, int) and i >= INT64_MAX:
        return size
    if i < 0:
        i = i + size
    return jax.core.min_dim(jax.core.max_dim(i, 0), size)


def slice_bounds(x, dim, start, end):
    """``(dim, start, end)`` normalised as ATen's ``slice`` does (``end >= start``)."""
    dim = dim % x.ndim
    size = x.shape[dim]
    start = _bound(start, size, 0)
    return dim, start, jax.core.max_dim(_bound(end, size, size), start)


def shape_from_data(node: torch.fx.Node) -> bool:
    """Whether a size of ``node``'s output (or the output itself, a number) is one only the
    data fixes: an unbacked ``u0`` that torch.export's guards did not pin to a number. A
    view's storage offset may be unbacked (``x[i.item()]``) without its shape being so."""
    return data_sized(node.meta.get("val"))


def data_sized(val: Any) -> bool:
    """Whether a recorded value (tensors' shapes, numbers, tuples of them) holds a size only
    the data fixes."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols
    from torch.utils import _pytree as tpytree

    sizes = [tuple(v.shape) if isinstance(v, torch.Tensor) else v for v in tpytree.tree_leaves(val)]
    return bool(free_unbacked_symbols(sizes))


def needs_static_shape(what: str, instead: str) -> str:
    """The refusal of an op whose output size depends on the data."""
    return (
        f"{what} depends on the data and JAX needs static shapes; instead, {instead}, or pin "
        "a known size with torch._check(size == N)"
    )

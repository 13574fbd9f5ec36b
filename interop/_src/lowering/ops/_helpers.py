"""Helpers the op families share: optional dtype arguments, low-precision accumulation,
ATen's reduction dims, per-axis arguments and slice bounds, Python integers that do not fit
int32, and the float operand of elementwise functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils import _pytree as tpytree

from interop._src.dtypes import jax_dtype
from interop._src.lowering.ops.registry import op

#: ATen's "no bound" (``x[a:]`` records ``end=INT64_MAX``): an int no real size reaches
INT64_MAX = 2**63 - 1
#: the integers JAX holds a Python int as without ``jax_enable_x64``
INT32_RANGE = (-(2**31), 2**31 - 1)
_WIDE = (torch.int64, torch.uint64)


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


def fl(x: jax.Array) -> jax.Array:
    """The operand of an elementwise float function as torch's CPU kernel computes it: float32
    for integers, booleans and the low-precision floats (rounded back once by the interpreter's
    cast to torch's dtype), float32 / float64 / complex as they are."""
    if x.dtype in (jnp.float32, jnp.float64) or jnp.issubdtype(x.dtype, jnp.complexfloating):
        return x
    return x.astype(jnp.float32)


def unary(name: str, fn: Callable[[jax.Array], jax.Array]) -> None:
    """Register ``aten.<name>.default`` as ``fn`` of its operand made float by `fl`."""

    def lowered(x: jax.Array) -> jax.Array:
        return fn(fl(x))

    lowered.__name__ = lowered.__qualname__ = name
    op(f"aten.{name}.default")(lowered)


def _fits(v: Any) -> bool:
    return not isinstance(v, int) or isinstance(v, bool) or INT32_RANGE[0] <= v <= INT32_RANGE[1]


def scalar(v: Any, like: Any) -> Any:
    """A Python number ``v`` meeting the array ``like`` as torch's kernel takes it.

    JAX without ``jax_enable_x64`` cannot take a Python int outside int32 at all (it raises
    ``OverflowError``); torch casts the scalar to the operation's type. So such an int becomes
    a float beside a float array, and wraps to the array's width beside a narrow integer array
    (torch's cast). Beside an int64 tensor (held as int32) it cannot be right: `wide_ints`
    refuses those nodes at build time.
    """
    if _fits(v) or jax.config.jax_enable_x64 or not hasattr(like, "dtype"):
        return v
    if not jnp.issubdtype(like.dtype, jnp.integer):
        return float(v)
    info = jnp.iinfo(like.dtype)
    v %= 2**info.bits
    return np.asarray(v - 2**info.bits if v > info.max else v, like.dtype)


def wide_ints(node: torch.fx.Node) -> str | None:
    """Build-time refusal of an integer beyond int32 meeting an int64 tensor without x64.

    JAX holds int64 as int32 unless ``jax_enable_x64`` is on, so a Python int beyond int32 in
    an int64 computation (``ids + 2**40``, ``x << 40``) would wrap; the lowering sees it here
    and refuses instead.
    """
    if jax.config.jax_enable_x64:
        return None
    leaves = tpytree.tree_leaves((node.args, node.kwargs))
    big = [v for v in leaves if not _fits(v)]
    metas = [getattr(n, "meta", {}).get("val") for n in (*leaves, node)]
    if big and any(getattr(m, "dtype", None) in _WIDE for m in metas):
        return (
            f"the integer {big[0]} meets an int64 tensor, and JAX holds int64 as int32 unless "
            "jax_enable_x64 is on; call jax.config.update('jax_enable_x64', True) before "
            "lowering"
        )
    return None


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

"""Scatters: ``scatter`` (a tensor or a value, plain or reducing), ``scatter_add``,
``scatter_reduce``, ``index_reduce``, ``masked_scatter``, ``put`` and ``diagonal_scatter``.

Sums, products and means of low-precision values are computed in float32 and rounded once
(nearer the exact result than torch's running low-precision sum, never farther). Where one
position is written several times without a reduction, which write wins is left open, as
torch's documentation leaves it.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op


def _flat1(fn):
    """Run ``fn(x, dim, index, src, ...)`` on a 0-d ``x`` as on a 1-element row."""

    def run(x, dim, index, src, *args, **kwargs):
        if x.ndim:
            return fn(x, dim % x.ndim, index, src, *args, **kwargs)
        src = src.reshape(1) if hasattr(src, "ndim") and src.ndim == 0 else src
        return fn(x.reshape(1), 0, index.reshape(-1), src, *args, **kwargs).reshape(())

    return run


def _where(index, dim):
    """ATen's scatter address of each index element: the index along ``dim``, its own
    position along the others."""
    return tuple(
        index if d == dim else lax.broadcasted_iota(index.dtype, index.shape, d)
        for d in range(index.ndim)
    )


def _crop(src, shape):
    """The part of ``src`` a scatter reads: its leading ``shape`` corner."""
    if not hasattr(src, "ndim"):
        return jnp.full(shape, src)
    return src[tuple(slice(0, s) for s in shape)] if src.ndim else jnp.broadcast_to(src, shape)


_REDUCE = {"sum": "add", "add": "add", "prod": "multiply", "multiply": "multiply"}
_REDUCE.update(amax="max", amin="min", mean="add")


def _identity(reduce, dtype):
    """The value a position starts from when ``include_self=False``."""
    if reduce in ("amax", "amin"):
        if jnp.issubdtype(dtype, jnp.inexact):
            return -jnp.inf if reduce == "amax" else jnp.inf
        info = jnp.iinfo(dtype)
        return info.min if reduce == "amax" else info.max
    return 1 if reduce == "prod" else 0


def _reduce_at(x, where, src, reduce, include_self):
    """``x`` with ``src`` reduced into the positions ``where`` (ATen's scatter_reduce rule)."""
    dtype = x.dtype
    acc = up(x) if reduce in ("sum", "add", "prod", "multiply", "mean") else x
    src = src.astype(acc.dtype)
    start = acc
    if not include_self:
        hit = jnp.zeros(x.shape, bool).at[where].set(True)
        start = jnp.where(hit, jnp.asarray(_identity(reduce, acc.dtype), acc.dtype), acc)
    out = getattr(start.at[where], _REDUCE[reduce])(src)
    if reduce == "mean":  # a position nothing reached keeps its value (count 1)
        count = jnp.zeros(x.shape, acc.dtype).at[where].add(1) + (1 if include_self else 0)
        count = jnp.maximum(count, 1)
        # torch divides integer means rounding down
        out = out / count if _inexact(acc) else jnp.floor_divide(out, count)
    return out.astype(dtype)


def _inexact(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


@op("aten.scatter.src", "aten.scatter.value")
def scatter(x, dim, index, src):
    return _flat1(_scatter)(x, dim, index, src)


def _scatter(x, dim, index, src):
    return x.at[_where(index, dim)].set(_crop(src, index.shape).astype(x.dtype))


@op("aten.scatter.reduce", "aten.scatter.value_reduce")
def scatter_reduce_legacy(x, dim, index, src, *, reduce):
    return _flat1(_scatter_reduce)(x, dim, index, src, reduce, True)


@op("aten.scatter_add.default")
def scatter_add(x, dim, index, src):
    return _flat1(_scatter_reduce)(x, dim, index, src, "sum", True)


@op("aten.scatter_reduce.two")
def scatter_reduce(x, dim, index, src, reduce, *, include_self=True):
    return _flat1(_scatter_reduce)(x, dim, index, src, reduce, include_self)


def _scatter_reduce(x, dim, index, src, reduce, include_self):
    return _reduce_at(x, _where(index, dim), _crop(src, index.shape), reduce, include_self)


@op("aten.index_reduce.default")
def index_reduce(x, dim, index, source, reduce, *, include_self=True):
    return _flat1(_index_reduce)(x, dim, index, source, reduce, include_self)


def _index_reduce(x, dim, index, source, reduce, include_self):
    where = (slice(None),) * dim + (index.reshape(-1),)
    return _reduce_at(x, where, source.reshape(_source_shape(x, dim, index)), reduce, include_self)


def _source_shape(x, dim, index):
    return (*x.shape[:dim], index.size, *x.shape[dim + 1 :])


@op("aten.masked_scatter.default")
def masked_scatter(x, mask, source):
    """The True positions of ``mask``, in order, take ``source``'s leading elements."""
    x, mask = jnp.broadcast_arrays(x, mask)  # the out-of-place op broadcasts both
    flat = source.reshape(-1)
    if flat.size == 0:  # torch needs a source element per True position: there are none
        return x
    rank = jnp.cumsum(mask.reshape(-1)) - 1
    taken = jnp.take(flat, jnp.clip(rank, 0, flat.size - 1)).reshape(x.shape)
    return jnp.where(mask, taken.astype(x.dtype), x)


@op("aten.put.default")
def put(x, index, source, accumulate=False):
    ref = x.reshape(-1).at[index.reshape(-1)]
    source = source.reshape(-1).astype(x.dtype)
    return (ref.add(source) if accumulate else ref.set(source)).reshape(x.shape)


@op("aten.diagonal_scatter.default")
def diagonal_scatter(x, src, offset=0, dim1=0, dim2=1):
    moved = jnp.moveaxis(x, (dim1, dim2), (-2, -1))
    n = src.shape[-1]
    i = jnp.arange(n)
    rows, cols = i + max(-offset, 0), i + max(offset, 0)
    moved = moved.at[..., rows, cols].set(src.astype(x.dtype))
    return jnp.moveaxis(moved, (-2, -1), (dim1 % x.ndim, dim2 % x.ndim))

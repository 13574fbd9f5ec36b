"""Scans along one dim: cumulative sums and products, running maxima and minima with their
indices, and the running log-sum-exp.

Low precision accumulates in float32 and rounds each output once, as torch's CPU scans do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import as_dtype, up
from interop._src.lowering.ops.registry import op


def _along(fn, x, dim):
    """``fn(x, axis)`` with a 0-d ``x`` scanned as a 1-element row."""
    if x.ndim == 0:
        return fn(x.reshape(1), 0).reshape(())
    return fn(x, dim % x.ndim)


def _scan(fn, x, dim, dtype):
    # torch sums integers and booleans as int64 (narrowed to int32 without x64)
    whole = jax.dtypes.canonicalize_dtype(jnp.int64)
    want = as_dtype(dtype) or (x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else whole)
    return _along(lambda a, axis: fn(up(a.astype(want)), axis=axis), x, dim).astype(want)


@op("aten.cumsum.default")
def cumsum(x, dim, dtype=None):
    return _scan(jnp.cumsum, x, dim, dtype)


@op("aten.cumprod.default")
def cumprod(x, dim, dtype=None):
    return _scan(jnp.cumprod, x, dim, dtype)


@op("aten.logcumsumexp.default")
def logcumsumexp(x, dim):
    return _along(lambda a, axis: lax.cumlogsumexp(up(a), axis=axis), x, dim).astype(x.dtype)


def _running(x, dim, better):
    """The running best of ``x`` along ``dim`` and its index, as torch's CPU loop finds them:
    a NaN wins and stays, a tie moves the index to the later element."""
    x1 = x.reshape(1) if x.ndim == 0 else x
    axis = dim % x1.ndim
    idx = lax.broadcasted_iota(jnp.int32, x1.shape, axis)

    def combine(a, b):  # a precedes b; b wins ties
        (va, ia), (vb, ib) = a, b
        if jnp.issubdtype(va.dtype, jnp.inexact):
            take = jnp.isnan(vb) | (~jnp.isnan(va) & better(vb, va))
        else:
            take = better(vb, va)
        return jnp.where(take, vb, va), jnp.where(take, ib, ia)

    values, indices = lax.associative_scan(combine, (x1, idx), axis=axis)
    return values.reshape(x.shape), indices.reshape(x.shape)


@op("aten.cummax.default")
def cummax(x, dim):
    return _running(x, dim, jnp.greater_equal)


@op("aten.cummin.default")
def cummin(x, dim):
    return _running(x, dim, jnp.less_equal)

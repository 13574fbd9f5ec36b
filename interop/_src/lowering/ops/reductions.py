"""Reductions over dims: sums and means (float32 accumulation for low precision), products,
variance, extrema and their indices, ``any`` / ``all``, vector norms."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import as_dtype, axes, low, up
from interop._src.lowering.ops.registry import op


def dims(x, dim):
    """The JAX axes of an ATen reduction's ``dim``; on a 0-d tensor, whose only dims torch
    accepts are 0 and -1 (the scalar itself), none: reducing a scalar returns it."""
    return None if x.ndim == 0 else axes(dim)


def one_dim(x, dim):
    """The axis of an ATen ``int dim`` / ``int? dim`` argument (None on a 0-d tensor)."""
    return None if x.ndim == 0 else dim


def _cast(x, dtype):
    """The input as ``dtype=`` says: torch casts first, then accumulates in that dtype's
    accumulation type (float32 for a low-precision ``dtype=``, not the low precision)."""
    return x if dtype is None else x.astype(as_dtype(dtype))


def _down(y, x):
    """A float32-accumulated result back in the low precision of ``x``, rounded once."""
    return y.astype(x.dtype) if low(x) else y


@op("aten.sum.dim_IntList", "aten.sum.default")
def sum_(x, dim=None, keepdim=False, dtype=None):
    x = _cast(x, dtype)
    return _down(jnp.sum(up(x), axis=dims(x, dim), keepdims=keepdim), x)


@op("aten.mean.dim", "aten.mean.default")
def mean(x, dim=None, keepdim=False, dtype=None):
    x = _cast(x, dtype)
    return _down(jnp.mean(up(x), axis=dims(x, dim), keepdims=keepdim), x)


@op("aten.prod.dim_int", "aten.prod.default")
def prod(x, dim=None, keepdim=False, dtype=None):
    return jnp.prod(x, axis=one_dim(x, dim), keepdims=keepdim, dtype=as_dtype(dtype))


@op("aten.var.correction")
def var(x, dim=None, *, correction=None, keepdim=False):
    ddof = 1 if correction is None else correction
    return jnp.var(up(x), axis=dims(x, dim), ddof=ddof, keepdims=keepdim)


@op("aten.var_mean.correction")
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    return var(x, dim, correction=correction, keepdim=keepdim), mean(x, dim, keepdim)


@op("aten.amax.default")
def amax(x, dim=(), keepdim=False):
    return jnp.max(x, axis=dims(x, dim), keepdims=keepdim)


@op("aten.amin.default")
def amin(x, dim=(), keepdim=False):
    return jnp.min(x, axis=dims(x, dim), keepdims=keepdim)


@op("aten.max.dim")
def max_dim(x, dim, keepdim=False):
    dim = one_dim(x, dim)
    return jnp.max(x, axis=dim, keepdims=keepdim), jnp.argmax(x, axis=dim, keepdims=keepdim)


@op("aten.min.dim")
def min_dim(x, dim, keepdim=False):
    dim = one_dim(x, dim)
    return jnp.min(x, axis=dim, keepdims=keepdim), jnp.argmin(x, axis=dim, keepdims=keepdim)


@op("aten.max.default")
def max_(x):
    return jnp.max(x)


@op("aten.min.default")
def min_(x):
    return jnp.min(x)


@op("aten.argmax.default")
def argmax(x, dim=None, keepdim=False):
    return jnp.argmax(x, axis=one_dim(x, dim), keepdims=keepdim)


@op("aten.argmin.default")
def argmin(x, dim=None, keepdim=False):
    return jnp.argmin(x, axis=one_dim(x, dim), keepdims=keepdim)


@op("aten.any.default", "aten.any.dim", "aten.any.dims")
def any_(x, dim=None, keepdim=False):
    return jnp.any(x, axis=dims(x, dim), keepdims=keepdim)


@op("aten.all.default", "aten.all.dim", "aten.all.dims")
def all_(x, dim=None, keepdim=False):
    return jnp.all(x, axis=dims(x, dim), keepdims=keepdim)


@op("aten.linalg_vector_norm.default")
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    y = up(x) if dtype is None else x.astype(as_dtype(dtype))
    return jnp.linalg.vector_norm(y, ord=ord, axis=dims(x, dim), keepdims=keepdim)

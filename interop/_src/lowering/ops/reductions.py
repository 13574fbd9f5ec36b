"""Reductions over dims: sums and means (float32 accumulation for low precision), products,
variance, extrema and their indices, ``any`` / ``all``, vector norms."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import as_dtype, axes, up
from interop._src.lowering.ops.registry import op


@op("aten.sum.dim_IntList", "aten.sum.default")
def sum_(x, dim=None, keepdim=False, dtype=None):
    return jnp.sum(up(x), axis=axes(dim), keepdims=keepdim, dtype=as_dtype(dtype))


@op("aten.mean.dim", "aten.mean.default")
def mean(x, dim=None, keepdim=False, dtype=None):
    return jnp.mean(up(x), axis=axes(dim), keepdims=keepdim, dtype=as_dtype(dtype))


@op("aten.prod.dim_int", "aten.prod.default")
def prod(x, dim=None, keepdim=False, dtype=None):
    return jnp.prod(x, axis=dim, keepdims=keepdim, dtype=as_dtype(dtype))


@op("aten.var.correction")
def var(x, dim=None, *, correction=None, keepdim=False):
    ddof = 1 if correction is None else correction
    return jnp.var(up(x), axis=axes(dim), ddof=ddof, keepdims=keepdim)


@op("aten.var_mean.correction")
def var_mean(x, dim=None, *, correction=None, keepdim=False):
    return var(x, dim, correction=correction, keepdim=keepdim), mean(x, dim, keepdim)


@op("aten.amax.default")
def amax(x, dim=(), keepdim=False):
    return jnp.max(x, axis=axes(dim), keepdims=keepdim)


@op("aten.amin.default")
def amin(x, dim=(), keepdim=False):
    return jnp.min(x, axis=axes(dim), keepdims=keepdim)


@op("aten.max.dim")
def max_dim(x, dim, keepdim=False):
    return jnp.max(x, axis=dim, keepdims=keepdim), jnp.argmax(x, axis=dim, keepdims=keepdim)


@op("aten.min.dim")
def min_dim(x, dim, keepdim=False):
    return jnp.min(x, axis=dim, keepdims=keepdim), jnp.argmin(x, axis=dim, keepdims=keepdim)


@op("aten.max.default")
def max_(x):
    return jnp.max(x)


@op("aten.min.default")
def min_(x):
    return jnp.min(x)


@op("aten.argmax.default")
def argmax(x, dim=None, keepdim=False):
    return jnp.argmax(x, axis=dim, keepdims=keepdim)


@op("aten.argmin.default")
def argmin(x, dim=None, keepdim=False):
    return jnp.argmin(x, axis=dim, keepdims=keepdim)


@op("aten.any.default", "aten.any.dim", "aten.any.dims")
def any_(x, dim=None, keepdim=False):
    return jnp.any(x, axis=axes(dim), keepdims=keepdim)


@op("aten.all.default", "aten.all.dim", "aten.all.dims")
def all_(x, dim=None, keepdim=False):
    return jnp.all(x, axis=axes(dim), keepdims=keepdim)


@op("aten.linalg_vector_norm.default")
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    y = up(x) if dtype is None else x.astype(as_dtype(dtype))
    return jnp.linalg.vector_norm(y, ord=ord, axis=axes(dim), keepdims=keepdim)

"""Comparisons, NaN / infinity tests, logical and bitwise ops, and selection by a mask
(``where``, ``masked_fill``)."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops.registry import op


@op("aten.eq.Tensor", "aten.eq.Scalar")
def eq(a, b):
    return a == b


@op("aten.ne.Tensor", "aten.ne.Scalar")
def ne(a, b):
    return a != b


@op("aten.lt.Tensor", "aten.lt.Scalar")
def lt(a, b):
    return a < b


@op("aten.le.Tensor", "aten.le.Scalar")
def le(a, b):
    return a <= b


@op("aten.gt.Tensor", "aten.gt.Scalar")
def gt(a, b):
    return a > b


@op("aten.ge.Tensor", "aten.ge.Scalar")
def ge(a, b):
    return a >= b


@op("aten.isnan.default")
def isnan(x):
    return jnp.isnan(x)


@op("aten.isinf.default")
def isinf(x):
    return jnp.isinf(x)


@op("aten.logical_not.default")
def logical_not(x):
    return jnp.logical_not(x)


@op("aten.logical_and.default")
def logical_and(a, b):
    return jnp.logical_and(a, b)


@op("aten.logical_or.default")
def logical_or(a, b):
    return jnp.logical_or(a, b)


@op("aten.logical_xor.default")
def logical_xor(a, b):
    return jnp.logical_xor(a, b)


@op("aten.bitwise_not.default")
def bitwise_not(x):
    return jnp.logical_not(x) if x.dtype == jnp.bool_ else jnp.bitwise_not(x)


@op("aten.bitwise_and.Tensor", "aten.bitwise_and.Scalar")
def bitwise_and(a, b):
    return jnp.bitwise_and(a, b)


@op("aten.bitwise_or.Tensor", "aten.bitwise_or.Scalar")
def bitwise_or(a, b):
    return jnp.bitwise_or(a, b)


@op("aten.bitwise_xor.Tensor", "aten.bitwise_xor.Scalar")
def bitwise_xor(a, b):
    return jnp.bitwise_xor(a, b)


@op("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther", "aten.where.Scalar")
def where(cond, a, b):
    return jnp.where(cond, a, b)


@op("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def masked_fill(x, mask, value):
    return jnp.where(mask, jnp.asarray(value, x.dtype), x)

"""Arithmetic: the four operations (with ATen's ``alpha`` and rounding modes), remainders,
powers, sign and absolute value, rounding, clamping, elementwise maximum and minimum."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops.registry import op


@op("aten.add.Tensor", "aten.add.Scalar")
def add(a, b, alpha=1):
    return a + (b if alpha == 1 else alpha * b)


@op("aten.sub.Tensor", "aten.sub.Scalar")
def sub(a, b, alpha=1):
    return a - (b if alpha == 1 else alpha * b)


@op("aten.rsub.Scalar", "aten.rsub.Tensor")
def rsub(a, b, alpha=1):
    return b - (a if alpha == 1 else alpha * a)


@op("aten.mul.Tensor", "aten.mul.Scalar")
def mul(a, b):
    return a * b


@op("aten.div.Tensor", "aten.div.Scalar")
def div(a, b):
    return jnp.true_divide(a, b)


@op("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def div_mode(a, b, rounding_mode=None):
    if rounding_mode is None:
        return jnp.true_divide(a, b)
    if rounding_mode == "floor":
        return jnp.floor_divide(a, b)
    q = jnp.true_divide(a, b)
    return jnp.trunc(q).astype(jnp.result_type(a, b))


@op("aten.floor_divide.default", "aten.floor_divide.Scalar")
def floor_divide(a, b):
    return jnp.floor_divide(a, b)


@op("aten.remainder.Tensor", "aten.remainder.Scalar")
def remainder(a, b):
    return jnp.remainder(a, b)


@op("aten.fmod.Tensor", "aten.fmod.Scalar")
def fmod(a, b):
    return jnp.fmod(a, b)


@op("aten.pow.Tensor_Scalar", "aten.pow.Tensor_Tensor")
def pow_(a, b):
    if isinstance(b, (int, float)) and float(b) == 2.0:
        return a * a
    return jnp.power(a, b)


@op("aten.pow.Scalar")
def pow_scalar(a, b):
    return jnp.power(jnp.asarray(a, b.dtype), b)


@op("aten.neg.default")
def neg(x):
    return -x


@op("aten.abs.default")
def abs_(x):
    return jnp.abs(x)


@op("aten.sign.default")
def sign(x):
    return jnp.sign(x)


@op("aten.reciprocal.default")
def reciprocal(x):
    return 1 / x


@op("aten.floor.default")
def floor(x):
    return jnp.floor(x)


@op("aten.ceil.default")
def ceil(x):
    return jnp.ceil(x)


@op("aten.round.default")
def round_(x):
    return jnp.round(x)  # half to even, as torch


@op("aten.trunc.default")
def trunc(x):
    return jnp.trunc(x)


@op("aten.clamp.default", "aten.clamp.Tensor")
def clamp(x, min=None, max=None):
    if min is not None:
        x = jnp.maximum(x, jnp.asarray(min, x.dtype) if not hasattr(min, "dtype") else min)
    if max is not None:
        x = jnp.minimum(x, jnp.asarray(max, x.dtype) if not hasattr(max, "dtype") else max)
    return x


@op("aten.clamp_min.default")
def clamp_min(x, min):
    return clamp(x, min=min)


@op("aten.clamp_max.default")
def clamp_max(x, max):
    return clamp(x, max=max)


@op("aten.maximum.default")
def maximum(a, b):
    return jnp.maximum(a, b)


@op("aten.minimum.default")
def minimum(a, b):
    return jnp.minimum(a, b)

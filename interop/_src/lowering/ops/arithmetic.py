"""Arithmetic: the four operations (with ATen's ``alpha`` and rounding modes), remainders,
powers, sign and absolute value, rounding, clamping, elementwise maximum and minimum.

A Python int operand goes through ``_helpers.scalar`` (JAX without x64 takes no int beyond
int32); one meeting an int64 tensor is refused at build time (``_helpers.wide_ints``).
"""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import as_dtype, fl, low, scalar, up, wide_ints
from interop._src.lowering.ops.registry import op


@op("aten.add.Tensor", "aten.add.Scalar", refuses=wide_ints)
def add(a, b, alpha=1):
    b = scalar(b, a)
    return a + (b if alpha == 1 else alpha * b)


@op("aten.sub.Tensor", "aten.sub.Scalar", refuses=wide_ints)
def sub(a, b, alpha=1):
    b = scalar(b, a)
    return a - (b if alpha == 1 else alpha * b)


@op("aten.rsub.Scalar", "aten.rsub.Tensor", refuses=wide_ints)
def rsub(a, b, alpha=1):
    b = scalar(b, a)
    return b - (a if alpha == 1 else alpha * a)


@op("aten.mul.Tensor", "aten.mul.Scalar", refuses=wide_ints)
def mul(a, b):
    return a * scalar(b, a)


def _true_divide(a, b):
    """``a / b``; in bfloat16 / float16 divided in float32 and rounded once, a Python divisor
    kept in float32 (not rounded to the dtype first), as torch's CPU kernel divides. XLA would
    otherwise multiply a float16 by the rounded reciprocal of a constant divisor."""
    if not (low(a) or low(b)):
        return jnp.true_divide(a, b)
    return jnp.true_divide(up(a), up(b) if hasattr(b, "dtype") else b).astype(jnp.result_type(a, b))


@op("aten.div.Tensor", "aten.div.Scalar", refuses=wide_ints)
def div(a, b):
    return _true_divide(a, scalar(b, a))


@op("aten.div.Tensor_mode", "aten.div.Scalar_mode", refuses=wide_ints)
def div_mode(a, b, rounding_mode=None):
    b = scalar(b, a)
    if rounding_mode is None:
        return _true_divide(a, b)
    if rounding_mode == "floor":
        return jnp.floor_divide(a, b)
    q = jnp.true_divide(a, b)
    return jnp.trunc(q).astype(jnp.result_type(a, b))


@op("aten.floor_divide.default", "aten.floor_divide.Scalar", refuses=wide_ints)
def floor_divide(a, b):
    return jnp.floor_divide(a, scalar(b, a))


@op("aten.remainder.Tensor", "aten.remainder.Scalar", refuses=wide_ints)
def remainder(a, b):
    return jnp.remainder(a, scalar(b, a))


@op("aten.fmod.Tensor", "aten.fmod.Scalar", refuses=wide_ints)
def fmod(a, b):
    return jnp.fmod(a, scalar(b, a))


@op("aten.pow.Tensor_Scalar", "aten.pow.Tensor_Tensor", refuses=wide_ints)
def pow_(a, b):
    b = scalar(b, a)
    if isinstance(b, (int, float)) and float(b) == 2.0:
        return a * a
    return _power(a, b)


@op("aten.pow.Scalar", refuses=wide_ints)
def pow_scalar(a, b):
    return _power(scalar(a, b), b)  # a weak scalar: 2.5 ** ints is float, as in torch


def _power(a, b):
    """``a ** b``; between integers, torch's rule for a negative exponent (1 for a base of 1,
    ±1 for -1, else 0) where JAX's integer power gives garbage."""
    out = jnp.power(a, b)
    if not jnp.issubdtype(out.dtype, jnp.integer) or not jnp.issubdtype(
        jnp.result_type(b), jnp.integer
    ):
        return out
    a, b = jnp.asarray(a, out.dtype), jnp.asarray(b)
    odd = jnp.where(b % 2 == 0, 1, -1).astype(out.dtype)
    negative = jnp.where(a == 1, 1, jnp.where(a == -1, odd, 0)).astype(out.dtype)
    return jnp.where(b < 0, negative, jnp.power(a, jnp.maximum(b, 0)))


@op("aten.neg.default")
def neg(x):
    return -x


@op("aten.abs.default")
def abs_(x):
    return jnp.abs(x)


@op("aten.sign.default")
def sign(x):
    return x if x.dtype == jnp.bool_ else jnp.sign(x)


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


@op("aten.round.decimals")
def round_decimals(x, decimals=0):
    # torch's kernel: scale by 10**|decimals| in float32 (the opmath type), round half to
    # even, scale back; dividing by the power for negative decimals, never multiplying by 0.1
    x = up(x)
    ten = jnp.asarray(10.0 ** abs(decimals), x.dtype)
    if decimals < 0:
        return jnp.round(x / ten) * ten
    return jnp.round(x * ten) / ten


@op("aten.trunc.default")
def trunc(x):
    return jnp.trunc(x)


@op("aten.clamp.default", "aten.clamp.Tensor", refuses=wide_ints)
def clamp(x, min=None, max=None):
    min, max = scalar(min, x), scalar(max, x)
    if min is not None:
        x = jnp.maximum(x, jnp.asarray(min, x.dtype) if not hasattr(min, "dtype") else min)
    if max is not None:
        x = jnp.minimum(x, jnp.asarray(max, x.dtype) if not hasattr(max, "dtype") else max)
    return x


@op("aten.clamp_min.default", "aten.clamp_min.Tensor", refuses=wide_ints)
def clamp_min(x, min):
    return clamp(x, min=min)


@op("aten.clamp_max.default", "aten.clamp_max.Tensor", refuses=wide_ints)
def clamp_max(x, max):
    return clamp(x, max=max)


@op("aten.maximum.default")
def maximum(a, b):
    return jnp.maximum(a, b)


@op("aten.minimum.default")
def minimum(a, b):
    return jnp.minimum(a, b)


@op("prims.scalar_tensor.default")
def prims_scalar_tensor(s, *, dtype=None, device=None):
    # torch's xlogy / xlog1py decompositions with a Python-number operand leave this prim
    return jnp.asarray(s, dtype=as_dtype(dtype) or jnp.float32)


@op("aten.fmax.default")
def fmax(a, b):
    return jnp.fmax(a, b)  # NaN only where both are NaN


@op("aten.fmin.default")
def fmin(a, b):
    return jnp.fmin(a, b)


@op("aten.copysign.Tensor", "aten.copysign.Scalar")
def copysign(a, b):
    a = fl(a)
    return jnp.copysign(a, b.astype(a.dtype) if hasattr(b, "dtype") else float(b))


@op("aten.signbit.default")
def signbit(x):
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x < 0 if jnp.issubdtype(x.dtype, jnp.signedinteger) else jnp.zeros(x.shape, bool)
    return jnp.signbit(x)


@op("aten.nextafter.default")
def nextafter(a, b):
    return jnp.nextafter(a, b.astype(a.dtype))


@op("aten.frexp.Tensor")
def frexp(x):
    mantissa, exponent = jnp.frexp(x)
    return mantissa, exponent.astype(jnp.int32)


@op("aten.ldexp.Tensor")
def ldexp(x, other):
    # torch's definition, x * 2.0**other (so it overflows where x * 2**other does)
    two = jnp.power(2.0, fl(other))
    return fl(x) * two


@op("aten.gcd.default")
def gcd(a, b):
    return jnp.gcd(a, b)


@op("aten.lcm.default")
def lcm(a, b):
    return jnp.lcm(a, b)

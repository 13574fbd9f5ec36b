"""Comparisons, NaN / infinity tests, logical and bitwise ops and shifts, and selection by a
mask (``where``, ``masked_fill``).

Python ints go through ``_helpers.scalar`` and ``_helpers.wide_ints`` as in ``arithmetic``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import scalar, wide_ints
from interop._src.lowering.ops.registry import op


@op("aten.eq.Tensor", "aten.eq.Scalar", refuses=wide_ints)
def eq(a, b):
    return a == scalar(b, a)


@op("aten.ne.Tensor", "aten.ne.Scalar", refuses=wide_ints)
def ne(a, b):
    return a != scalar(b, a)


@op("aten.lt.Tensor", "aten.lt.Scalar", refuses=wide_ints)
def lt(a, b):
    return a < scalar(b, a)


@op("aten.le.Tensor", "aten.le.Scalar", refuses=wide_ints)
def le(a, b):
    return a <= scalar(b, a)


@op("aten.gt.Tensor", "aten.gt.Scalar", refuses=wide_ints)
def gt(a, b):
    return a > scalar(b, a)


@op("aten.ge.Tensor", "aten.ge.Scalar", refuses=wide_ints)
def ge(a, b):
    return a >= scalar(b, a)


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


@op("aten.bitwise_and.Tensor", "aten.bitwise_and.Scalar", refuses=wide_ints)
def bitwise_and(a, b):
    return jnp.bitwise_and(a, scalar(b, a))


@op("aten.bitwise_or.Tensor", "aten.bitwise_or.Scalar", refuses=wide_ints)
def bitwise_or(a, b):
    return jnp.bitwise_or(a, scalar(b, a))


@op("aten.bitwise_xor.Tensor", "aten.bitwise_xor.Scalar", refuses=wide_ints)
def bitwise_xor(a, b):
    return jnp.bitwise_xor(a, scalar(b, a))


@op(
    "aten.where.self",
    "aten.where.ScalarSelf",
    "aten.where.ScalarOther",
    "aten.where.Scalar",
    refuses=wide_ints,
)
def where(cond, a, b):
    return jnp.where(cond, scalar(a, b), scalar(b, a))


@op("aten.masked_fill.Scalar", "aten.masked_fill.Tensor", refuses=wide_ints)
def masked_fill(x, mask, value):
    return jnp.where(mask, jnp.asarray(scalar(value, x), x.dtype), x)


def _shift_operands(a, b):
    """Shift operands as one integer dtype (a Python int or 0-d tensor takes ``a``'s; a bool
    tensor is shifted as torch's default integer)."""
    a, b = (x.astype(int) if getattr(x, "dtype", None) == jnp.bool_ else x for x in (a, b))
    if not hasattr(a, "dtype"):
        a = jnp.asarray(scalar(a, b), b.dtype)
    b = jnp.asarray(scalar(b, a), a.dtype) if not hasattr(b, "dtype") else b
    if a.ndim and not b.ndim:
        dtype = a.dtype  # torch: a 0-d operand does not widen a dimensioned one
    elif b.ndim and not a.ndim:
        dtype = b.dtype
    else:
        dtype = jnp.result_type(a, b)
    return a.astype(dtype), b.astype(dtype)


@op(
    "aten.bitwise_left_shift.Tensor",
    "aten.bitwise_left_shift.Tensor_Scalar",
    "aten.bitwise_left_shift.Scalar_Tensor",
    "aten.__lshift__.Tensor",
    "aten.__lshift__.Scalar",
    refuses=wide_ints,
)
def bitwise_left_shift(a, b):
    # torch: 0 for a shift below 0 or past the width
    a, b = _shift_operands(a, b)
    bits = jnp.iinfo(a.dtype).bits
    return jnp.where((b < 0) | (b >= bits), jnp.zeros_like(a), lax.shift_left(a, b))


@op(
    "aten.bitwise_right_shift.Tensor",
    "aten.bitwise_right_shift.Tensor_Scalar",
    "aten.bitwise_right_shift.Scalar_Tensor",
    "aten.__rshift__.Tensor",
    "aten.__rshift__.Scalar",
    refuses=wide_ints,
)
def bitwise_right_shift(a, b):
    # torch: arithmetic for signed types, logical for unsigned; a shift below 0 or past the
    # width shifts by the whole width (the sign fill, or 0)
    a, b = _shift_operands(a, b)
    signed = jnp.issubdtype(a.dtype, jnp.signedinteger)
    bits = jnp.iinfo(a.dtype).bits - int(signed)
    b = jnp.where((b < 0) | (b >= bits), bits, b)
    return lax.shift_right_arithmetic(a, b) if signed else lax.shift_right_logical(a, b)

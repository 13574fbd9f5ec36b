"""Matrix products: ``mm`` / ``bmm`` / ``matmul``, ``addmm`` / ``baddbmm`` / ``addbmm`` /
``addmv``, ``linear``, ``trace`` (float32 accumulation for low-precision inputs, as torch's
CPU kernels). Decompositions and solves are in ``linalg_decompositions`` / ``linalg_solve``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from interop._src.lowering.ops._helpers import low, up
from interop._src.lowering.ops.registry import op


def _matmul(a, b):
    if low(a) or low(b):
        return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(jnp.result_type(a, b))
    return jnp.matmul(a, b)


@op("aten.mm.default", "aten.bmm.default", "aten.matmul.default")
def mm(a, b):
    return _matmul(a, b)


@op("aten.addmm.default", "aten.baddbmm.default", decompose=False)
def addmm(bias, a, b, *, beta=1, alpha=1):
    # kept whole: torch decomposes baddbmm into bmm, mul and add, rounding three times
    if not (low(a) or low(b)):
        return _add(bias, jnp.matmul(a, b), beta, alpha)
    prod = jnp.matmul(a, b, preferred_element_type=jnp.float32)
    return _add_low(bias, prod, beta, alpha, a.shape[-1], jnp.result_type(a, b))


def _add(bias, ab, beta, alpha):
    """``beta * bias + alpha * ab``; ``beta=0`` ignores ``bias`` (NaN in it included), as torch."""
    ab = ab if alpha == 1 else alpha * ab
    return ab + (bias if beta == 1 else beta * bias) if beta != 0 else ab


def _add_low(bias, prod, beta, alpha, k, dtype):
    """torch's CPU kernels in low precision: ``beta * bias + alpha * prod`` summed in float32
    (``prod`` is) and rounded once; with an empty inner axis (``k == 0``) torch scales
    ``bias`` by ``beta`` rounded to the low-precision dtype instead."""
    if k == 0:
        out = jnp.zeros((), dtype) if beta == 0 else bias.astype(dtype) * jnp.asarray(beta, dtype)
        return jnp.broadcast_to(out, prod.shape)
    out = prod if alpha == 1 else alpha * prod
    return (out if beta == 0 else out + beta * bias.astype(jnp.float32)).astype(dtype)


@op("aten.addmv.default")
def addmv(bias, a, v, *, beta=1, alpha=1):
    if not (low(a) or low(v)):
        return _add(bias, jnp.matmul(a, v), beta, alpha)
    # torch's CPU gemv: beta and alpha in the low-precision dtype, bias scaled and rounded
    # before the product is added (float16 with alpha=1 rounds once); float32 sums
    dtype, k = jnp.result_type(a, v), a.shape[-1]
    beta, alpha = (float(np.asarray(s, dtype)) for s in (beta, alpha))
    prod = jnp.matmul(a, v, preferred_element_type=jnp.float32)
    if k == 0 or (dtype == jnp.float16 and alpha == 1):
        return _add_low(bias, prod, beta, alpha, k, dtype)
    y = (beta * bias.astype(jnp.float32)).astype(dtype) if beta != 0 else 0
    return (jnp.asarray(y, jnp.float32) + alpha * prod).astype(dtype)


@op("aten.addbmm.default")
def addbmm(bias, a, b, *, beta=1, alpha=1):
    if not (low(a) or low(b)):
        return _add(bias, jnp.einsum("bij,bjk->ik", a, b), beta, alpha)
    # torch's CPU kernel, rounding as it does: one addmm_ per batch entry, each summing in
    # float32 and rounding to the low-precision dtype (beta scales bias in the first only)
    dtype, k = jnp.result_type(a, b), a.shape[2]
    prods = jnp.matmul(a, b, preferred_element_type=jnp.float32)
    if a.shape[0] == 0:
        return _add_low(bias, jnp.zeros((a.shape[1], b.shape[2])), beta, alpha, 0, dtype)

    def step(acc, prod):
        return (acc.astype(jnp.float32) + alpha * prod).astype(dtype), None

    first = _add_low(bias, prods[0], beta, alpha, k, dtype)
    return lax.scan(step, first, prods[1:])[0]


@op("aten.trace.default", decompose=False)
def trace(x):
    # kept whole: torch decomposes it into diagonal + sum; low precision sums in float32
    return jnp.trace(up(x)).astype(x.dtype) if low(x) else jnp.trace(x)


@op("aten.linear.default")
def linear(x, w, b=None):
    y = _matmul(x, w.T)
    return y if b is None else y + b

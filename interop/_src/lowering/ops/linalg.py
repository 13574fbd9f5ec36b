"""Matrix products: ``mm`` / ``bmm`` / ``matmul``, ``addmm`` / ``baddbmm``, ``linear``
(float32 accumulation for low-precision inputs, as torch's CPU kernels)."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import low
from interop._src.lowering.ops.registry import op


def _matmul(a, b):
    if low(a) or low(b):
        return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(jnp.result_type(a, b))
    return jnp.matmul(a, b)


@op("aten.mm.default", "aten.bmm.default", "aten.matmul.default")
def mm(a, b):
    return _matmul(a, b)


@op("aten.addmm.default", "aten.baddbmm.default")
def addmm(bias, a, b, *, beta=1, alpha=1):
    ab = _matmul(a, b)
    ab = ab if alpha == 1 else alpha * ab
    return ab + (bias if beta == 1 else beta * bias) if beta != 0 else ab


@op("aten.linear.default")
def linear(x, w, b=None):
    y = _matmul(x, w.T)
    return y if b is None else y + b

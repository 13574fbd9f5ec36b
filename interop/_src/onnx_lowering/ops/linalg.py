"""Matrix products through the torch lowering's (``interop/_src/lowering/ops/linalg.py``:
float32 accumulation for low-precision inputs)."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops.linalg import mm
from interop._src.onnx_lowering.registry import onnx_op


@onnx_op("MatMul")
def matmul(node, a, b):
    return mm(a, b)


@onnx_op("Gemm", alpha=1.0, beta=1.0, transA=0, transB=0)
def gemm(node, a, b, c=None):
    a = a.T if node["transA"] else a
    b = b.T if node["transB"] else b
    y = mm(a, b)
    if node["alpha"] != 1.0:
        y = node["alpha"] * y
    if c is not None:
        y = y + (c if node["beta"] == 1.0 else node["beta"] * c)
    return y.astype(a.dtype)


@onnx_op("Einsum", equation="")
def einsum(node, *xs):
    return jnp.einsum(node["equation"].replace(" ", ""), *xs)

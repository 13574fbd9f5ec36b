"""Reductions (axes as an input from opset 18, as an attribute before; ``ReduceSum``'s from 13),
``ArgMax`` / ``ArgMin``, ``CumSum``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from interop._src.onnx_lowering.ops._common import ints, norm_axes
from interop._src.onnx_lowering.registry import onnx_op


def _axes(node, x, axes):
    if axes is not None:
        found = ints(axes)
    elif node.get("axes") is not None:
        found = list(node["axes"])
    else:
        found = []
    if not found:
        return None if not node["noop_with_empty_axes"] else ()
    return tuple(norm_axes(found, x.ndim))


def _reduction(name, fn):
    def run(node, x, axes=None):
        ax = _axes(node, x, axes)
        if ax == ():
            return x
        return fn(x, ax, bool(node["keepdims"]))

    onnx_op(name, static=(1,), keepdims=1, noop_with_empty_axes=0, axes=None)(run)


_reduction("ReduceMean", lambda x, a, k: jnp.mean(x, a, keepdims=k).astype(x.dtype))
_reduction("ReduceSum", lambda x, a, k: jnp.sum(x, a, keepdims=k).astype(x.dtype))
_reduction("ReduceMax", lambda x, a, k: jnp.max(x, a, keepdims=k, initial=_lowest(x)))
_reduction("ReduceMin", lambda x, a, k: jnp.min(x, a, keepdims=k, initial=_highest(x)))
_reduction("ReduceProd", lambda x, a, k: jnp.prod(x, a, keepdims=k).astype(x.dtype))
_reduction("ReduceL1", lambda x, a, k: jnp.sum(jnp.abs(x), a, keepdims=k).astype(x.dtype))
_reduction("ReduceL2", lambda x, a, k: jnp.sqrt(jnp.sum(x * x, a, keepdims=k)).astype(x.dtype))
_reduction("ReduceSumSquare", lambda x, a, k: jnp.sum(x * x, a, keepdims=k).astype(x.dtype))
_reduction("ReduceLogSum", lambda x, a, k: jnp.log(jnp.sum(x, a, keepdims=k)))
_reduction(
    "ReduceLogSumExp",
    lambda x, a, k: jnp.log(jnp.sum(jnp.exp(x), a, keepdims=k)).astype(x.dtype),
)


def _lowest(x):
    if x.dtype == jnp.bool_:
        return False
    return -np.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min


def _highest(x):
    if x.dtype == jnp.bool_:
        return True
    return np.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).max


def _arg(name, fn):
    def run(node, x):
        axis = node["axis"]
        if node["select_last_index"]:
            flipped = jnp.flip(x, axis)
            i = x.shape[axis] - 1 - fn(flipped, axis=axis, keepdims=bool(node["keepdims"]))
        else:
            i = fn(x, axis=axis, keepdims=bool(node["keepdims"]))
        return i.astype(jnp.int32)

    onnx_op(name, axis=0, keepdims=1, select_last_index=0)(run)


_arg("ArgMax", jnp.argmax)
_arg("ArgMin", jnp.argmin)


@onnx_op("CumSum", static=(1,), exclusive=0, reverse=0)
def cumsum(node, x, axis):
    (a,) = ints(axis)
    y = jnp.flip(x, a) if node["reverse"] else x
    y = jnp.cumsum(y, axis=a, dtype=x.dtype)
    if node["exclusive"]:
        y = y - (jnp.flip(x, a) if node["reverse"] else x)
    return jnp.flip(y, a) if node["reverse"] else y

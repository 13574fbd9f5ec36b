"""Pooling through the torch lowering's functions (``interop/_src/lowering/ops/pooling.py``);
ONNX's asymmetric and automatic padding is adapted in ``_padding.py``."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops.pooling import _ceil_extra, _identity, avg_pool, max_pool
from interop._src.onnx_lowering.ops._padding import split_pads, window_pads
from interop._src.onnx_lowering.registry import onnx_op


def _window(node, x):
    k = list(node["kernel_shape"])
    n = len(k)
    strides = list(node["strides"] or [1] * n)
    dilations = list(node.get("dilations") or [1] * n)
    pads = window_pads(node["auto_pad"], node["pads"], x.shape[2:], k, strides, dilations)
    return n, k, strides, dilations, pads


def _max_refusal(attrs, n_outputs):
    if n_outputs > 1:
        return "MaxPool's Indices output"
    if attrs["storage_order"]:
        return "MaxPool with storage_order=1"
    return None


@onnx_op(
    "MaxPool",
    refuses=_max_refusal,
    auto_pad="NOTSET",
    ceil_mode=0,
    dilations=None,
    kernel_shape=None,
    pads=None,
    storage_order=0,
    strides=None,
)
def max_pool_(node, x):
    n, k, strides, dilations, pads = _window(node, x)
    fill = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    x, sym = split_pads(x, pads, fill)
    return max_pool(x, k, strides, sym, dilations, bool(node["ceil_mode"]), n=n)


@onnx_op(
    "AveragePool",
    auto_pad="NOTSET",
    ceil_mode=0,
    count_include_pad=0,
    dilations=None,
    kernel_shape=None,
    pads=None,
    strides=None,
)
def average_pool(node, x):
    n, k, strides, dilations, pads = _window(node, x)
    ceil = bool(node["ceil_mode"])
    if any(d != 1 for d in dilations):
        return _dilated_avg(x, k, strides, dilations, pads, node["count_include_pad"], ceil)
    if all(b == e for b, e in pads):
        sym = [b for b, _ in pads]
        return avg_pool(
            x, k, strides, sym, bool(node["ceil_mode"]), bool(node["count_include_pad"]), None, n=n
        )
    if node["count_include_pad"]:
        x, sym = split_pads(x, pads)
        return avg_pool(x, k, strides, sym, bool(node["ceil_mode"]), True, None, n=n)
    return _dilated_avg(x, k, strides, dilations, pads, False, ceil)


def _dilated_avg(x, k, strides, dilations, pads, count_pad, ceil_mode):
    """Window sums over window counts, for what ATen's average pooling has no form of
    (dilation; asymmetric pads not counted). ``ceil_mode`` extends the end as ATen's rule
    does, never counting the extension."""
    lead = x.ndim - len(k)
    sizes = x.shape[lead:]
    extra = [
        _ceil_extra(n + b + e, kk, s, 0, d, ceil_mode)
        for n, (b, e), kk, s, d in zip(sizes, pads, k, strides, dilations, strict=True)
    ]
    window = (1,) * lead + tuple(k)
    stride = (1,) * lead + tuple(strides)
    dil = (1,) * lead + tuple(dilations)
    full = [(0, 0)] * lead + [(b, e + x) for (b, e), x in zip(pads, extra, strict=True)]
    zero = _identity(0, x.dtype)
    total = lax.reduce_window(x, zero, lax.add, window, stride, full, window_dilation=dil)
    ones = jnp.ones(x.shape, x.dtype)
    if count_pad:
        ones = jnp.pad(ones, [(0, 0)] * lead + list(pads), constant_values=1)
        full = [(0, 0)] * lead + [(0, e) for e in extra]
    count = lax.reduce_window(ones, zero, lax.add, window, stride, full, window_dilation=dil)
    return total / count


@onnx_op("GlobalAveragePool")
def global_average_pool(node, x):
    return jnp.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True)


@onnx_op("GlobalMaxPool")
def global_max_pool(node, x):
    return jnp.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)

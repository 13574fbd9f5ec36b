"""Pooling: max and average pooling windows in ``lax.reduce_window`` with ATen's output
sizes (``ceil_mode``, padding counted or not), and adaptive average pooling."""

from __future__ import annotations

import math
import operator

import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from interop._src.lowering.ops._helpers import low, tup, up
from interop._src.lowering.ops.registry import op
from interop._src.lowering.ops.resample import adaptive_avg_matrix, separable


def _ceil_extra(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Extra right padding so ``reduce_window`` yields ATen's output length (ceil_mode rule)."""
    eff = d * (k - 1) + 1
    if not ceil_mode:
        out = (size + 2 * p - eff) // s + 1
    else:
        out = math.ceil((size + 2 * p - eff) / s) + 1
        if (out - 1) * s >= size + p:  # the last window must start inside the input or left pad
            out -= 1
    return max(0, (out - 1) * s + eff - (size + 2 * p))


def _window(x, n, kernel_size, stride, padding, dilation):
    k = tup(kernel_size, n)
    s = tup(stride, n) if stride else k  # ATen: an empty stride means stride = kernel
    return k, s, tup(padding, n), tup(dilation, n)


def _identity(value: float, dtype) -> np.ndarray:
    """A reduction's initial value as a NumPy scalar, concrete even under ``jit``.

    ``lax.reduce_window`` recognises max / add (``reduce_window_max`` / ``_sum``, which have
    VJPs) only from a concrete identity; a ``jnp.array`` is a tracer under ``jit``, which gave
    the generic ``reduce_window``, which cannot be differentiated in reverse mode: ``jit(grad)``
    and a serialised VJP of any model with pooling failed.
    """
    return np.array(value, dtype)


def max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, n: int = 2):
    """ATen ``max_pool{n}d`` values (the padding is -inf, never chosen)."""
    k, s, p, d = _window(x, n, kernel_size, stride, padding, dilation)
    lead = x.ndim - n
    extra = [_ceil_extra(x.shape[lead + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(n)]
    init = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    return lax.reduce_window(
        x,
        _identity(init, x.dtype),
        lax.max,
        (1,) * lead + k,
        (1,) * lead + s,
        [(0, 0)] * lead + [(pi, pi + e) for pi, e in zip(p, extra, strict=True)],
        window_dilation=(1,) * lead + d,
    )


def avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, n=2):
    """ATen ``avg_pool{n}d``: window sums over ATen's divisor (padding counted or not)."""
    k, s, p, _ = _window(x, n, kernel_size, stride, padding, 1)
    lead = x.ndim - n
    sizes = x.shape[lead:]
    extra = [_ceil_extra(sizes[i], k[i], s[i], p[i], 1, ceil_mode) for i in range(n)]
    acc_t = jnp.float32 if low(x) else x.dtype
    pads = [(0, 0)] * lead + [(pi, pi + e) for pi, e in zip(p, extra, strict=True)]
    total = lax.reduce_window(
        x.astype(acc_t), _identity(0, acc_t), lax.add, (1,) * lead + k, (1,) * lead + s, pads
    )
    if divisor_override:
        return (total / divisor_override).astype(x.dtype)
    # the count: windows clipped to the padded input (count_include_pad) or to the input itself
    if count_include_pad:
        ones = jnp.ones(tuple(si + 2 * pi for si, pi in zip(sizes, p, strict=True)), acc_t)
        cpads = [(0, e) for e in extra]
    else:
        ones = jnp.ones(sizes, acc_t)
        cpads = [(pi, pi + e) for pi, e in zip(p, extra, strict=True)]
    count = lax.reduce_window(ones, _identity(0, acc_t), lax.add, k, s, cpads)
    return (total / count).astype(x.dtype)


def _indices_used(node: torch.fx.Node) -> str | None:
    """The refusal of ``max_pool2d_with_indices``: its indices are never computed."""
    used = any(u.target is operator.getitem and u.args[1] == 1 and u.users for u in node.users)
    return "its indices output" if used else None


@op("aten.max_pool2d_with_indices.default", refuses=_indices_used)
def max_pool2d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    # indices are never computed: the check refuses graphs that use them (max_unpool)
    return max_pool(x, kernel_size, stride, padding, dilation, ceil_mode), None


@op("aten.max_pool2d.default")
def max_pool2d(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)


@op("aten.avg_pool2d.default")
def avg_pool2d(
    x,
    kernel_size,
    stride=(),
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    return avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


@op("aten._adaptive_avg_pool2d.default", "aten.adaptive_avg_pool2d.default")
def adaptive_avg_pool2d(x, output_size):
    h, w = x.shape[-2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = oh or h, ow or w
    if h % oh == 0 and w % ow == 0:
        y = up(x).reshape((*x.shape[:-2], oh, h // oh, ow, w // ow)).mean(axis=(-3, -1))
        return y.astype(x.dtype)
    return separable(x, adaptive_avg_matrix(h, oh), adaptive_avg_matrix(w, ow))

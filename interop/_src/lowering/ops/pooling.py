"""Pooling: max and average pooling windows in ``lax.reduce_window`` with ATen's output
sizes (``ceil_mode``, padding counted or not), and adaptive average pooling."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from interop._src.lowering.ops._helpers import low, tup, up
from interop._src.lowering.ops.registry import op
from interop._src.lowering.ops.resample import adaptive_avg_matrix, separable


def out_len(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """ATen's pooling output length along one axis (``pooling_output_shape``)."""
    eff = d * (k - 1) + 1
    if not ceil_mode:
        return (size + 2 * p - eff) // s + 1
    out = math.ceil((size + 2 * p - eff) / s) + 1
    if (out - 1) * s >= size + p:  # the last window must start inside the input or left pad
        out -= 1
    return out


def _ceil_extra(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Extra right padding so ``reduce_window`` yields ATen's output length (ceil_mode rule)."""
    out = out_len(size, k, s, p, d, ceil_mode)
    return max(0, (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p))


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


@op("aten.avg_pool3d.default")
def avg_pool3d(
    x,
    kernel_size,
    stride=(),
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    return avg_pool(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, n=3
    )


def adaptive_avg_pool(x, output_size, n: int):
    """ATen's adaptive average pooling over the last ``n`` axes: a reshaped mean where every
    size divides, else one small averaging matrix per axis."""
    sizes = x.shape[x.ndim - n :]
    out = [o or s for o, s in zip(tup(output_size, n), sizes, strict=True)]  # None keeps a size
    if all(s % o == 0 for s, o in zip(sizes, out, strict=True)):
        split = [d for s, o in zip(sizes, out, strict=True) for d in (o, s // o)]
        y = up(x).reshape((*x.shape[: x.ndim - n], *split))
        return y.mean(axis=tuple(range(x.ndim - n + 1, x.ndim + n, 2))).astype(x.dtype)
    if n == 2:
        return separable(x, *(adaptive_avg_matrix(s, o) for s, o in zip(sizes, out, strict=True)))
    y = up(x)
    for i, (s, o) in enumerate(zip(sizes, out, strict=True)):
        m = jnp.asarray(adaptive_avg_matrix(s, o), y.dtype)
        y = jnp.moveaxis(
            jnp.tensordot(y, m, axes=([x.ndim - n + i], [1]), precision=lax.Precision.HIGHEST),
            -1,
            x.ndim - n + i,
        )
    return y.astype(x.dtype)


@op("aten._adaptive_avg_pool2d.default", "aten.adaptive_avg_pool2d.default")
def adaptive_avg_pool2d(x, output_size):
    return adaptive_avg_pool(x, output_size, 2)


@op("aten._adaptive_avg_pool3d.default", "aten.adaptive_avg_pool3d.default")
def adaptive_avg_pool3d(x, output_size):
    return adaptive_avg_pool(x, output_size, 3)

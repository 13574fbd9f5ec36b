"""Max pooling with its indices: ``max_pool{1,2,3}d_with_indices``, ``adaptive_max_pool{1,2,3}d``
and ``fractional_max_pool{2,3}d``, each returning ATen's flat indices into the pooled plane.

One reduction serves them all: each output cell's window is a list of source positions per
spatial axis, and the maximum is taken one axis at a time, last axis first, carrying the flat
index along. Choosing per axis the first maximum (and the last NaN, which ATen's ``val > max
|| isnan(val)`` scan keeps) chooses over the whole window the first maximum in row-major order
(the last NaN), exactly the element ATen's kernels pick; ``max_unpool`` can scatter with them.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from interop._src.lowering.ops._helpers import tup, up
from interop._src.lowering.ops.pooling import max_pool, out_len
from interop._src.lowering.ops.registry import op


def _pick(g, axis: int):
    """The position along ``axis`` ATen's scan keeps: the last NaN, else the first maximum."""
    first = jnp.argmax(g, axis=axis)
    if not jnp.issubdtype(g.dtype, jnp.inexact):
        return first
    nan = jnp.isnan(g)
    last_nan = g.shape[axis] - 1 - jnp.argmax(jnp.flip(nan, axis), axis=axis)
    return jnp.where(jnp.any(nan, axis=axis), last_nan, first)


def window_max(x, windows):
    """The maximum of ``x`` over each output cell's window, and its flat index in the pooled
    plane (the last ``len(windows)`` axes).

    Args:
        x: ``(..., S_1, ..., S_n)``.
        windows: per spatial axis, ``(O, K)`` source positions (every one inside ``[0, S)``;
            a window shorter than ``K`` repeats one of its own positions), as a NumPy array, or
            a JAX array of shape ``(..., O, K)`` broadcasting against ``x``'s leading axes.
    """
    n = len(windows)
    lead = x.ndim - n
    sizes = x.shape[lead:]
    vals, flat = x, None
    for a in reversed(range(n)):
        ax, stride = lead + a, math.prod(sizes[a + 1 :])
        pos = _positions(windows[a], vals.ndim, ax)  # (..., O, K, 1, ..., 1)
        g = jnp.take_along_axis(jnp.expand_dims(vals, ax + 1), pos, axis=ax, mode="clip")
        k = jnp.expand_dims(_pick(g, ax + 1), ax + 1)
        vals = jnp.take_along_axis(g, k, axis=ax + 1).squeeze(ax + 1)
        here = jnp.take_along_axis(pos, k, axis=ax + 1).squeeze(ax + 1) * stride
        if flat is not None:
            carried = jnp.take_along_axis(jnp.expand_dims(flat, ax + 1), pos, axis=ax, mode="clip")
            here = here + jnp.take_along_axis(carried, k, axis=ax + 1).squeeze(ax + 1)
        flat = here
    return vals, flat


def _positions(w, ndim: int, ax: int):
    """Window positions ``(O, K)`` (or ``(..., O, K)``) shaped to index axis ``ax`` of an
    ``ndim``-d array with ``K`` inserted after it."""
    w = jnp.asarray(w, jnp.int32)
    w = w.reshape(w.shape[:-2] + (1,) * (ax - (w.ndim - 2)) + w.shape[-2:])
    return w.reshape(w.shape + (1,) * (ndim - ax - 1))


def pool_windows(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> np.ndarray:
    """``(O, k)`` source positions of ATen's max pooling windows along one axis, the padding
    replaced by the window's nearest position inside the input (never the maximum's)."""
    o = np.arange(out_len(size, k, s, p, d, ceil_mode))
    start = o * s - p
    pos = start[:, None] + d * np.arange(k)[None, :]
    first = start + d * np.ceil(np.maximum(-start, 0) / d).astype(np.int64)
    last = start + d * ((size - 1 - start) // d)
    last = np.minimum(last, start + d * (k - 1))
    return np.clip(pos, first[:, None], last[:, None])


def adaptive_windows(size: int, out: int) -> np.ndarray:
    """``(out, K)`` source positions of ATen's adaptive pooling windows along one axis
    (``[floor(i in / out), ceil((i + 1) in / out))``; shorter windows repeat their last)."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    k = int((end - start).max())
    return np.minimum(start[:, None] + np.arange(k)[None, :], (end - 1)[:, None])


def max_pool_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode, n):
    values = max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, n)
    k, p, d = tup(kernel_size, n), tup(padding, n), tup(dilation, n)
    s = tup(stride, n) if stride else k
    lead = x.ndim - n
    windows = [pool_windows(x.shape[lead + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(n)]
    # the indices are integers: no derivative flows through them (nor need it, to build them)
    _, indices = window_max(lax.stop_gradient(x), windows)
    return values, indices


@op("aten.max_pool2d_with_indices.default")
def max_pool2d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return max_pool_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode, 2)


@op("aten.max_pool3d_with_indices.default")
def max_pool3d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return max_pool_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode, 3)


@op("aten.max_pool1d_with_indices.default")
def max_pool1d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return max_pool_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def adaptive_max_pool(x, output_size, n):
    lead = x.ndim - n
    out = tup(output_size, n)
    return window_max(x, [adaptive_windows(x.shape[lead + i], out[i]) for i in range(n)])


@op("aten.adaptive_max_pool1d.default")
def adaptive_max_pool1d(x, output_size):
    return adaptive_max_pool(x, output_size, 1)


@op("aten.adaptive_max_pool2d.default")
def adaptive_max_pool2d(x, output_size):
    return adaptive_max_pool(x, output_size, 2)


@op("aten.adaptive_max_pool3d.default")
def adaptive_max_pool3d(x, output_size):
    return adaptive_max_pool(x, output_size, 3)


def _fractional_windows(u, size: int, k: int, out: int):
    """``(..., out, k)`` window positions of ATen's fractional max pooling along one axis from
    its samples ``u`` (``(...,)`` in ``[0, 1)``): ATen's ``generate_intervals``."""
    u = u[..., None]
    if out > 1:
        alpha = (size - k) / (out - 1)
        i = jnp.arange(out - 1, dtype=u.dtype)
        starts = jnp.floor((i + u) * alpha) - jnp.floor(u * alpha)
        starts = jnp.concatenate([starts, jnp.full(u.shape, size - k, u.dtype)], axis=-1)
    else:
        starts = jnp.full(u.shape, size - k, u.dtype)
    return starts.astype(jnp.int32)[..., None] + jnp.arange(k, dtype=jnp.int32)


def fractional_max_pool(x, kernel_size, output_size, samples, n):
    lead = x.ndim - n
    k, out = tup(kernel_size, n), tup(output_size, n)
    # ATen's samples per plane: (W, H) in 2-D, (T, H, W) in 3-D
    order = (1, 0) if n == 2 else (0, 1, 2)
    samples = samples.astype(jnp.float32 if x.dtype != jnp.float64 else x.dtype)
    if x.ndim == n + 1:  # unbatched: one row of samples
        samples = samples[0]
    windows = [
        _fractional_windows(samples[..., order[i]], x.shape[lead + i], k[i], out[i])
        for i in range(n)
    ]
    return window_max(x, windows)


@op("aten.fractional_max_pool2d.default")
def fractional_max_pool2d(x, kernel_size, output_size, random_samples):
    return fractional_max_pool(x, kernel_size, output_size, random_samples, 2)


@op("aten.fractional_max_pool3d.default")
def fractional_max_pool3d(x, kernel_size, output_size, random_samples):
    return fractional_max_pool(x, kernel_size, output_size, random_samples, 3)


def _indices_backward(grad, x, indices, n: int):
    """Max pooling's backward: each window's gradient added to the element its index names
    (float32 accumulation for low precision)."""
    lead = x.shape[: x.ndim - n]
    rows = math.prod(lead)
    g = up(grad).reshape(rows, -1)
    idx = indices.reshape(rows, -1)
    plane = math.prod(x.shape[x.ndim - n :])
    out = jnp.zeros((rows, plane), g.dtype).at[jnp.arange(rows)[:, None], idx].add(g)
    return out.reshape(x.shape).astype(x.dtype)


@op("aten.max_pool2d_with_indices_backward.default")
def max_pool2d_with_indices_backward(
    grad, x, kernel_size, stride, padding, dilation, ceil_mode, indices
):
    return _indices_backward(grad, x, indices, 2)


@op("aten.max_pool3d_with_indices_backward.default")
def max_pool3d_with_indices_backward(
    grad, x, kernel_size, stride, padding, dilation, ceil_mode, indices
):
    return _indices_backward(grad, x, indices, 3)

"""Convolution and pooling in ``lax``, with ATen's argument conventions (NC... layouts).

The depthwise rewrite: XLA's CPU backend runs a grouped convolution with one channel per group
several times slower than torch (it has no depthwise kernel), while the same small
convolution written as ``kh * kw`` shifted multiply-adds fuses into one loop that beats torch.
``DEPTHWISE_MAX_TAPS`` bounds the kernels rewritten (measured in ``benchmarks/lowering.py``);
on other platforms XLA's own convolution is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

#: depthwise kernels with at most this many taps (kh * kw) are rewritten as multiply-adds on
#: the CPU; set to 0 to always use XLA's grouped convolution
DEPTHWISE_MAX_TAPS = 49


def _tup(v: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    return v * n if len(v) == 1 else v


def _dims(n: int) -> tuple[str, str, str]:
    sp = "DHW"[-n:] if n <= 3 else None
    return ("NC" + sp, "OI" + sp, "NC" + sp)


def _low(x: jax.Array) -> bool:
    return x.dtype in (jnp.bfloat16, jnp.float16)


def conv(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    """ATen ``convolution``: ``x (N, C, *sp)``, ``w (O, C/groups, *k)`` (transposed: ``(C, O/groups, *k)``)."""
    n = w.ndim - 2
    stride, padding, dilation = _tup(stride, n), _tup(padding, n), _tup(dilation, n)
    if transposed:
        y = _conv_transpose(x, w, stride, padding, dilation, _tup(output_padding, n), groups)
    elif _is_depthwise(x, w, groups, n):
        y = depthwise(x, w, stride, padding, dilation)
    else:
        y = lax.conv_general_dilated(
            x,
            w,
            window_strides=stride,
            padding=[(p, p) for p in padding],
            rhs_dilation=dilation,
            dimension_numbers=_dims(n),
            feature_group_count=groups,
            preferred_element_type=jnp.float32 if _low(x) else None,
        ).astype(x.dtype)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * n).astype(y.dtype)
    return y


def _is_depthwise(x, w, groups: int, n: int) -> bool:
    return (
        n == 2
        and groups > 1
        and w.shape[0] == groups
        and w.shape[1] == 1
        and x.shape[1] == groups
        and 1 < w.shape[2] * w.shape[3] <= DEPTHWISE_MAX_TAPS
        and jax.default_backend() == "cpu"
    )


def depthwise(x, w, stride, padding, dilation):
    """Depthwise 2-D convolution (``w (C, 1, kh, kw)``) as shifted multiply-adds that XLA fuses."""
    _, _, h, wd = x.shape
    kh, kw = w.shape[2], w.shape[3]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = jnp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    acc_t = jnp.float32 if _low(x) else x.dtype
    xp, w = xp.astype(acc_t), w.astype(acc_t)
    y = None
    for i in range(kh):
        for j in range(kw):
            tap = lax.slice(
                xp,
                (0, 0, i * dh, j * dw),
                (xp.shape[0], xp.shape[1], i * dh + (ho - 1) * sh + 1, j * dw + (wo - 1) * sw + 1),
                (1, 1, sh, sw),
            )
            term = tap * w[:, 0, i, j][None, :, None, None]
            y = term if y is None else y + term
    return y.astype(x.dtype)


def _conv_transpose(x, w, stride, padding, dilation, output_padding, groups):
    n = w.ndim - 2
    cin, cout_g, k = w.shape[0], w.shape[1], w.shape[2:]
    # (C, O/g, *k) -> (O, C/g, *k), kernel flipped: a transposed conv is a conv of the dilated input
    wg = w.reshape((groups, cin // groups, cout_g, *k)).swapaxes(1, 2)
    wg = wg.reshape((groups * cout_g, cin // groups, *k))
    wg = jnp.flip(wg, axis=tuple(range(2, 2 + n)))
    pads = [
        (d * (kk - 1) - p, d * (kk - 1) - p + op)
        for kk, p, d, op in zip(k, padding, dilation, output_padding, strict=True)
    ]
    return lax.conv_general_dilated(
        x,
        wg,
        window_strides=(1,) * n,
        padding=pads,
        lhs_dilation=stride,
        rhs_dilation=dilation,
        dimension_numbers=_dims(n),
        feature_group_count=groups,
        preferred_element_type=jnp.float32 if _low(x) else None,
    ).astype(x.dtype)


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
    k = _tup(kernel_size, n)
    s = _tup(stride, n) if stride else k  # ATen: an empty stride means stride = kernel
    return k, s, _tup(padding, n), _tup(dilation, n)


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
    acc_t = jnp.float32 if _low(x) else x.dtype
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

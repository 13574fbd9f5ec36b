"""Convolution in ``lax``, with ATen's argument conventions (NC... layouts).

The depthwise rewrite: on the CPU a grouped convolution with one channel per group and at most
``DEPTHWISE_MAX_TAPS`` taps is written as ``kh * kw`` shifted multiply-adds, which XLA fuses
into one loop (XLA's CPU backend has no depthwise kernel; see the lowering README's design
notes); on other platforms XLA's own convolution is kept.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import low, tup
from interop._src.lowering.ops.registry import op

#: depthwise kernels with at most this many taps (kh * kw) are rewritten as multiply-adds on
#: the CPU; set to 0 to always use XLA's grouped convolution
DEPTHWISE_MAX_TAPS = 49


def _dims(n: int) -> tuple[str, str, str]:
    sp = "DHW"[-n:] if n <= 3 else None
    return ("NC" + sp, "OI" + sp, "NC" + sp)


def conv(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    """ATen ``convolution``: ``x (N, C, *sp)``, ``w (O, C/groups, *k)`` (transposed:
    ``(C, O/groups, *k)``). bfloat16 / float16 accumulate in float32 and add the bias there,
    rounding once, as torch's CPU kernels do."""
    n = w.ndim - 2
    stride, padding, dilation = tup(stride, n), tup(padding, n), tup(dilation, n)
    if transposed:
        y = _conv_transpose(x, w, stride, padding, dilation, tup(output_padding, n), groups)
    elif _is_depthwise(x, w, groups, n):
        y = _depthwise_sum(x, w, stride, padding, dilation)
    else:
        y = lax.conv_general_dilated(
            x,
            w,
            window_strides=stride,
            padding=[(p, p) for p in padding],
            rhs_dilation=dilation,
            dimension_numbers=_dims(n),
            feature_group_count=groups,
            preferred_element_type=jnp.float32 if low(x) else None,
        )
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * n).astype(y.dtype)
    return y.astype(x.dtype)


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
    return _depthwise_sum(x, w, stride, padding, dilation).astype(x.dtype)


def _depthwise_sum(x, w, stride, padding, dilation):
    """`depthwise` in its accumulation dtype (float32 for bfloat16 / float16)."""
    _, _, h, wd = x.shape
    kh, kw = w.shape[2], w.shape[3]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = jnp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    acc_t = jnp.float32 if low(x) else x.dtype
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
    return y


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
        preferred_element_type=jnp.float32 if low(x) else None,
    )


@op("aten.convolution.default")
def convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    return conv(x, w, b, stride, padding, dilation, transposed, output_padding, groups)

"""ONNX's window padding (``pads`` as all begins then all ends, or ``auto_pad``) in the form the
torch lowering's convolution and pooling take: one symmetric pad per axis, and whatever is
left asymmetric as an explicit pad of the input first."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp


def window_pads(
    auto_pad: str,
    pads: Sequence[int] | None,
    sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[tuple[int, int]]:
    """``(begin, end)`` per spatial axis."""
    n = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return out
    if auto_pad == "VALID" or not pads:
        return [(0, 0)] * n
    return [(pads[i], pads[i + n]) for i in range(n)]


def split_pads(x, pads: list[tuple[int, int]], value: float = 0.0):
    """``(x padded by the asymmetric part, the symmetric pads left)``."""
    sym = [min(b, e) for b, e in pads]
    extra = [(b - s, e - s) for (b, e), s in zip(pads, sym, strict=True)]
    if any(b or e for b, e in extra):
        lead = [(0, 0)] * (x.ndim - len(pads))
        x = jnp.pad(x, lead + extra, constant_values=value)
    return x, sym

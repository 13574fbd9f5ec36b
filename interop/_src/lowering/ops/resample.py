"""Resampling: the ``upsample_*`` ops (nearest, bilinear, bicubic, antialiased) as small
matrices, exactly as ATen computes them.

Resizing a ``(..., in)`` axis to ``(..., out)`` is a matrix product with an ``(out, in)``
weight matrix built here in NumPy (float64) from ATen's index arithmetic, so XLA sees one
small matmul per axis instead of gathers. The matrices depend only on static sizes; adaptive
average pooling (``pooling.py``) uses them too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op

_CUBIC_A = -0.75  # ATen's bicubic constant (upsample_bicubic2d, like PIL's and OpenCV's)


def _scale(n_in: int, n_out: int, align_corners: bool, scale: float | None) -> float:
    """ATen's ``area_pixel_compute_scale``: source step per output pixel."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _source(dst: np.ndarray, step: float, align_corners: bool, cubic: bool) -> np.ndarray:
    """ATen's ``area_pixel_compute_source_index``."""
    if align_corners:
        return step * dst
    src = step * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def linear_matrix(n_in: int, n_out: int, align_corners: bool, scale: float | None) -> np.ndarray:
    """``(n_out, n_in)`` weights of ATen's (bi)linear upsampling along one axis."""
    src = _source(
        np.arange(n_out, dtype=np.float64),
        _scale(n_in, n_out, align_corners, scale),
        align_corners,
        False,
    )
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = np.clip(src - i0, 0.0, 1.0)
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    a = _CUBIC_A

    def near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def cubic_matrix(n_in: int, n_out: int, align_corners: bool, scale: float | None) -> np.ndarray:
    """``(n_out, n_in)`` weights of ATen's bicubic upsampling along one axis (edges clamped)."""
    src = _source(
        np.arange(n_out, dtype=np.float64),
        _scale(n_in, n_out, align_corners, scale),
        align_corners,
        True,
    )
    i0 = np.floor(src).astype(np.int64)
    weights = _cubic_weights(src - i0)
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for k, w in enumerate(weights):
        np.add.at(m, (rows, np.clip(i0 - 1 + k, 0, n_in - 1)), w)
    return m


def nearest_matrix(n_in: int, n_out: int, scale: float | None, exact: bool) -> np.ndarray:
    """``(n_out, n_in)`` one-hot rows of ATen's ``nearest`` / ``nearest-exact`` upsampling."""
    step = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
    dst = np.arange(n_out, dtype=np.float64) + (0.5 if exact else 0.0)
    src = np.minimum(np.floor(dst * step).astype(np.int64), n_in - 1)
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), src] = 1.0
    return m


def adaptive_avg_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` averaging rows of ATen's adaptive average pooling along one axis."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = math.ceil((i + 1) * n_in / n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def output_sizes(
    in_sizes: tuple[int, ...], output_size: list[int] | None, scale_factors: list[float] | None
) -> tuple[list[int], list[float | None]]:
    """The ``.vec`` overloads' rule: explicit sizes win, else ``floor(in * scale)``."""
    if output_size is not None:
        return list(output_size), [None] * len(in_sizes)
    if scale_factors is None:
        raise ValueError("upsample: expected output_size or scale_factors, got neither")
    sizes = [math.floor(n * s) for n, s in zip(in_sizes, scale_factors, strict=True)]
    return sizes, list(scale_factors)


def _aa_cubic(x: np.ndarray) -> np.ndarray:
    a = -0.5  # the antialiased kernels use Keys' a = -0.5 (PIL's), not -0.75
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _aa_linear(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


def antialias_matrix(
    n_in: int, n_out: int, align_corners: bool, scale: float | None, cubic: bool
) -> np.ndarray:
    """``(n_out, n_in)`` weights of ATen's ``_upsample_{bicubic,bilinear}2d_aa`` along one axis.

    ATen's ``_compute_indices_min_size_weights_aa``: a filter stretched by the downscale
    factor, truncated at the edges and renormalised (no edge clamping).
    """
    step = _scale(n_in, n_out, align_corners, scale)
    support = (2.0 if cubic else 1.0) * max(step, 1.0)
    invscale = 1.0 / step if step >= 1.0 else 1.0
    # ATen's align_corners_delta is 0.5 only for its uint8 path; float inputs use 0.0 and
    # align_corners only changes the scale
    delta = 0.0
    filt = _aa_cubic if cubic else _aa_linear
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = step * (i + 0.5 - delta)
        lo = max(int(center - support + 0.5 + delta), 0)
        hi = min(int(center + support + 0.5 + delta), n_in)
        w = filt((np.arange(lo, hi) - center + 0.5 - delta) * invscale)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def separable(x, mh: np.ndarray, mw: np.ndarray):
    """Apply ``(oh, h)`` and ``(ow, w)`` matrices to the last two axes (float32 accumulation)."""
    xf = up(x)
    mh, mw = jnp.asarray(mh, xf.dtype), jnp.asarray(mw, xf.dtype)
    y = jnp.einsum("...hw,oh,pw->...op", xf, mh, mw, precision=lax.Precision.HIGHEST)
    return y.astype(x.dtype)


def _upsample(x, output_size, scale_factors, matrix, scales=None):
    sizes, vec_scales = output_sizes(x.shape[-2:], output_size, scale_factors)
    scales = vec_scales if scales is None else scales
    return separable(
        x,
        matrix(x.shape[-2], sizes[0], scales[0]),
        matrix(x.shape[-1], sizes[1], scales[1]),
    )


def _axis_matrix(kind: str, align_corners: bool) -> Callable[[int, int, float | None], np.ndarray]:
    makers = {
        "bicubic": lambda i, o, s: cubic_matrix(i, o, align_corners, s),
        "bilinear": lambda i, o, s: linear_matrix(i, o, align_corners, s),
        "bicubic_aa": lambda i, o, s: antialias_matrix(i, o, align_corners, s, cubic=True),
        "bilinear_aa": lambda i, o, s: antialias_matrix(i, o, align_corners, s, cubic=False),
    }
    return makers[kind]


# kept whole: the decomposition is gathers and index bookkeeping, this is two small matmuls
@op("aten.upsample_bicubic2d.vec", decompose=False)
def upsample_bicubic2d(x, output_size, align_corners, scale_factors=None, *, scales=None):
    return _upsample(x, output_size, scale_factors, _axis_matrix("bicubic", align_corners), scales)


@op("aten.upsample_bilinear2d.vec")
def upsample_bilinear2d(x, output_size, align_corners, scale_factors=None, *, scales=None):
    return _upsample(x, output_size, scale_factors, _axis_matrix("bilinear", align_corners), scales)


@op("aten._upsample_bicubic2d_aa.vec")
def upsample_bicubic2d_aa(x, output_size, align_corners, scale_factors=None, *, scales=None):
    m = _axis_matrix("bicubic_aa", align_corners)
    return _upsample(x, output_size, scale_factors, m, scales)


@op("aten._upsample_bilinear2d_aa.vec")
def upsample_bilinear2d_aa(x, output_size, align_corners, scale_factors=None, *, scales=None):
    m = _axis_matrix("bilinear_aa", align_corners)
    return _upsample(x, output_size, scale_factors, m, scales)


@op("aten.upsample_nearest2d.vec")
def upsample_nearest2d(x, output_size, scale_factors=None):
    return _upsample(x, output_size, scale_factors, lambda i, o, s: nearest_matrix(i, o, s, False))


@op("aten._upsample_nearest_exact2d.vec")
def upsample_nearest_exact2d(x, output_size, scale_factors=None):
    return _upsample(x, output_size, scale_factors, lambda i, o, s: nearest_matrix(i, o, s, True))


def _upsample_default(vec: Callable[..., Any]) -> Callable[..., Any]:
    """The ``.default`` overload (sizes always given, scales optional) from the ``.vec`` one."""

    def fn(x, output_size, align_corners, scales_h=None, scales_w=None):
        return vec(x, output_size, align_corners, None, scales=[scales_h, scales_w])

    return fn


op("aten.upsample_bicubic2d.default")(_upsample_default(upsample_bicubic2d))
op("aten.upsample_bilinear2d.default")(_upsample_default(upsample_bilinear2d))
op("aten._upsample_bicubic2d_aa.default")(_upsample_default(upsample_bicubic2d_aa))
op("aten._upsample_bilinear2d_aa.default")(_upsample_default(upsample_bilinear2d_aa))

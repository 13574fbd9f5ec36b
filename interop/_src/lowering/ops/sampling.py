"""Sampling at arbitrary points: ``grid_sampler_2d`` / ``grid_sampler_3d`` (``F.grid_sample``:
spatial transformers, deformable attention), as ATen's CPU kernels compute them.

Each output point reads the input at the corners (bilinear), the nearest pixel, or the 4 x 4
taps (bicubic) around its unnormalised grid coordinate: a gather from the flattened spatial
plane per corner, masked where a corner falls outside the input (``padding_mode='zeros'``) and
weighted. Border and reflection padding move the coordinate (or each bicubic tap) inside first.
Computed in float32 for low-precision inputs and rounded once, as torch accumulates.
"""

from __future__ import annotations

import itertools
import math

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op

BILINEAR, NEAREST, BICUBIC = 0, 1, 2
ZEROS, BORDER, REFLECTION = 0, 1, 2
_A = -0.75  # ATen's cubic convolution constant


def _unnormalize(c, size: int, align_corners: bool):
    """A grid coordinate in ``[-1, 1]`` as a pixel position (ATen's ``grid_sampler_unnormalize``)."""
    if align_corners:
        return (c + 1) / 2 * (size - 1)
    return ((c + 1) * size - 1) / 2


def _reflect(c, size: int, align_corners: bool):
    """The reflection of ``c`` into the input (ATen's vectorised ``reflect_coordinates``):
    about the pixel centres with ``align_corners``, about the pixel edges without."""
    if size == 1:
        return jnp.zeros_like(c)
    low, span = (0.0, 2.0 * (size - 1)) if align_corners else (-0.5, 2.0 * size)
    dist = jnp.abs(c - low)
    extra = dist - jnp.trunc(dist / span) * span
    return jnp.minimum(extra, span - extra) + low


def _pad(c, size: int, padding_mode: int, align_corners: bool):
    """A pixel position moved inside the input as the padding mode says (zeros: unmoved)."""
    if padding_mode == REFLECTION:
        c = _reflect(c, size, align_corners)
    if padding_mode in (BORDER, REFLECTION):
        c = jnp.clip(c, 0, size - 1)
    return c


def _cubic(t):
    """The 4 cubic convolution weights of the taps at offsets -1, 0, 1, 2 from ``floor``."""

    def near(x):
        return ((_A + 2) * x - (_A + 3)) * x * x + 1

    def far(x):
        return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _gather(flat, sizes, idx, valid):
    """``flat`` ``(N, C, prod(sizes))`` at integer positions ``idx`` (one ``(N, *out)`` array
    per spatial axis), 0 where ``valid`` is False."""
    lin = jnp.zeros_like(idx[0])
    for i, size in zip(idx, sizes, strict=True):
        lin = lin * size + jnp.clip(i, 0, size - 1)
    out = lin.shape[1:]
    got = jnp.take_along_axis(flat, lin.reshape(lin.shape[0], 1, -1), axis=2, mode="clip")
    got = got.reshape((*flat.shape[:2], *out))
    return jnp.where(valid[:, None], got, 0) if valid is not None else got


def _inside(idx, sizes):
    ok = None
    for i, size in zip(idx, sizes, strict=True):
        here = (i >= 0) & (i < size)
        ok = here if ok is None else ok & here
    return ok


def grid_sample(x, grid, interpolation_mode: int, padding_mode: int, align_corners: bool):
    """ATen's ``grid_sampler_{2,3}d``: ``x`` ``(N, C, *sizes)``, ``grid`` ``(N, *out, n)``
    with its last axis ``(x, y[, z])`` indexing the spatial axes last to first."""
    n = x.ndim - 2
    sizes = x.shape[2:]
    xf, g = up(x), up(grid)
    flat = xf.reshape((*xf.shape[:2], math.prod(sizes)))
    # the spatial axes in x's order: grid[..., n - 1 - i] indexes axis i
    coords = [_unnormalize(g[..., n - 1 - i], sizes[i], align_corners) for i in range(n)]
    if interpolation_mode == BICUBIC:
        return _bicubic(flat, sizes, coords, padding_mode, align_corners).astype(x.dtype)
    coords = [_pad(c, s, padding_mode, align_corners) for c, s in zip(coords, sizes, strict=True)]
    if interpolation_mode == NEAREST:
        idx = [jnp.round(c).astype(jnp.int32) for c in coords]  # half to even, as nearbyint
        return _gather(flat, sizes, idx, _inside(idx, sizes)).astype(x.dtype)
    low = [jnp.floor(c) for c in coords]
    frac = [c - f for c, f in zip(coords, low, strict=True)]
    low = [f.astype(jnp.int32) for f in low]
    total = None
    for corner in itertools.product((0, 1), repeat=n):
        idx = [f + o for f, o in zip(low, corner, strict=True)]
        w = math.prod(t if o else 1 - t for t, o in zip(frac, corner, strict=True))
        term = _gather(flat, sizes, idx, _inside(idx, sizes)) * w[:, None]
        total = term if total is None else total + term
    return total.astype(x.dtype)


def _bicubic(flat, sizes, coords, padding_mode: int, align_corners: bool):
    """The 4 x 4 taps around each point, each tap moved inside by the padding mode."""
    (h, w), (cy, cx) = sizes, coords
    y0, x0 = jnp.floor(cy), jnp.floor(cx)
    wy, wx = _cubic(cy - y0), _cubic(cx - x0)
    rows = []
    for i in range(4):
        ty = _pad(y0 - 1 + i, h, padding_mode, align_corners)
        row = None
        for j in range(4):
            tx = _pad(x0 - 1 + j, w, padding_mode, align_corners)
            idx = [ty.astype(jnp.int32), tx.astype(jnp.int32)]
            valid = _inside(idx, sizes) if padding_mode == ZEROS else None
            term = _gather(flat, sizes, idx, valid) * wx[j][:, None]
            row = term if row is None else row + term
        rows.append(row * wy[i][:, None])
    return rows[0] + rows[1] + rows[2] + rows[3]


@op("aten.grid_sampler_2d.default")
def grid_sampler_2d(x, grid, interpolation_mode, padding_mode, align_corners):
    return grid_sample(x, grid, interpolation_mode, padding_mode, align_corners)


def _refuses_3d_bicubic(node) -> str | None:
    mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("interpolation_mode")
    return "bicubic interpolation, which torch has only in 2-D" if mode == BICUBIC else None


@op("aten.grid_sampler_3d.default", refuses=_refuses_3d_bicubic)
def grid_sampler_3d(x, grid, interpolation_mode, padding_mode, align_corners):
    return grid_sample(x, grid, interpolation_mode, padding_mode, align_corners)

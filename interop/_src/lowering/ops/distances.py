"""Distances: ``cdist`` (``_cdist_forward``, with ATen's choice between the matmul form and
direct differences), ``pdist`` (``_pdist_forward``) and ``dist``."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op

#: ATen's ``cdist`` compute modes (``compute_mode=`` of ``torch.cdist``)
_MM_IF_NECESSARY, _MM, _NO_MM = 0, 1, 2


def p_norm(d, p: float, axis):
    """The ``p``-norm of ``d`` along ``axis`` as ATen's distance kernels compute it:
    ``p = 0`` counts the nonzeros, ``p = inf`` is the largest magnitude."""
    a = jnp.abs(d)
    if p == 0:
        return jnp.sum(a != 0, axis=axis).astype(d.dtype)
    if p == 1:
        return jnp.sum(a, axis=axis)
    if p == 2:
        return jnp.sqrt(jnp.sum(a * a, axis=axis))
    if math.isinf(p):
        return jnp.max(a, axis=axis, initial=0.0)
    return jnp.sum(a**p, axis=axis) ** (1.0 / p)


def _euclidean_mm(x1, x2):
    """ATen's ``_euclidean_dist``: ``sqrt(max(|a|^2 + |b|^2 - 2 a.b, 0))`` in one matmul."""
    n1 = jnp.sum(x1 * x1, axis=-1, keepdims=True)
    n2 = jnp.sum(x2 * x2, axis=-1, keepdims=True)
    a = jnp.concatenate([-2 * x1, n1, jnp.ones_like(n1)], axis=-1)
    b = jnp.concatenate([x2, jnp.ones_like(n2), n2], axis=-1)
    d2 = jnp.matmul(a, jnp.swapaxes(b, -1, -2), precision=lax.Precision.HIGHEST)
    return jnp.sqrt(jnp.maximum(d2, 0))


@op("aten._cdist_forward.default")
def cdist(x1, x2, p, compute_mode=None):
    a, b = up(x1), up(x2)
    batch = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = jnp.broadcast_to(a, (*batch, *a.shape[-2:]))
    b = jnp.broadcast_to(b, (*batch, *b.shape[-2:]))
    mode = _MM_IF_NECESSARY if compute_mode is None else compute_mode
    big = a.shape[-2] > 25 or b.shape[-2] > 25
    if p == 2 and (mode == _MM or (mode == _MM_IF_NECESSARY and big)):
        return _euclidean_mm(a, b).astype(x1.dtype)
    d = a[..., :, None, :] - b[..., None, :, :]
    return p_norm(d, p, -1).astype(x1.dtype)


@op("aten._pdist_forward.default")
def pdist(x, p=2.0):
    i, j = np.triu_indices(x.shape[0], 1)
    xf = up(x)
    return p_norm(xf[i] - xf[j], p, -1).astype(x.dtype)


@op("aten.dist.default")
def dist(x, other, p=2):
    d = x - other  # torch subtracts in the inputs' dtype, then takes the norm in float32
    return p_norm(up(d).reshape(-1), p, 0).astype(d.dtype)

"""Scans along one dim: cumulative sums."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import as_dtype
from interop._src.lowering.ops.registry import op


@op("aten.cumsum.default")
def cumsum(x, dim, dtype=None):
    return jnp.cumsum(x, axis=dim, dtype=as_dtype(dtype))

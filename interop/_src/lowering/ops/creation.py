"""New tensors and copies: ``arange``, ``full`` / ``zeros`` / ``ones`` (and their ``_like``
and ``new_`` forms; ``empty`` is zeros), ``scalar_tensor``, ``fill``, ``copy``, ``_to_copy``."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.dtypes import jax_dtype
from interop._src.lowering.ops._helpers import as_dtype
from interop._src.lowering.ops.registry import op


@op("aten.arange.start_step", "aten.arange.start", "aten.arange.default")
def arange(start, end=None, step=1, *, dtype=None, layout=None, device=None, pin_memory=None):
    if end is None:
        start, end = 0, start
    return jnp.arange(start, end, step, dtype=as_dtype(dtype))


@op("aten.full.default")
def full(size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.full(tuple(size), fill_value, dtype=as_dtype(dtype))


@op("aten.full_like.default")
def full_like(
    x, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None
):
    return jnp.full(x.shape, fill_value, dtype=as_dtype(dtype) or x.dtype)


@op("aten.zeros_like.default", "aten.empty_like.default")
def zeros_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.zeros(x.shape, dtype=as_dtype(dtype) or x.dtype)


@op("aten.ones_like.default")
def ones_like(x, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.ones(x.shape, dtype=as_dtype(dtype) or x.dtype)


@op("aten.zeros.default", "aten.empty.memory_format")
def zeros(size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return jnp.zeros(tuple(size), dtype=as_dtype(dtype) or jnp.float32)


@op("aten.empty_permuted.default")
def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, pin_memory=None):
    # a memory layout has no meaning for a JAX array; the values are unset, so zeros
    return zeros(size, dtype=dtype)


@op("aten.ones.default")
def ones(size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.ones(tuple(size), dtype=as_dtype(dtype) or jnp.float32)


@op("aten.new_zeros.default", "aten.new_empty.default")
def new_zeros(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.zeros(tuple(size), dtype=as_dtype(dtype) or x.dtype)


@op("aten.new_ones.default")
def new_ones(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.ones(tuple(size), dtype=as_dtype(dtype) or x.dtype)


@op("aten.new_full.default")
def new_full(x, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.full(tuple(size), fill_value, dtype=as_dtype(dtype) or x.dtype)


@op("aten.scalar_tensor.default")
def scalar_tensor(s, *, dtype=None, layout=None, device=None, pin_memory=None):
    return jnp.asarray(s, dtype=as_dtype(dtype) or jnp.float32)


@op("aten.fill.Scalar")
def fill(x, value):
    return jnp.full(x.shape, value, x.dtype)


@op("aten.copy.default")
def copy(dst, src, non_blocking=False):
    return jnp.broadcast_to(src, dst.shape).astype(dst.dtype)


@op("aten._to_copy.default")
def to_copy(
    x,
    *,
    dtype=None,
    layout=None,
    device=None,
    pin_memory=None,
    non_blocking=False,
    memory_format=None,
):
    return x if dtype is None else x.astype(jax_dtype(dtype))

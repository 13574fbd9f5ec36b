"""Indexing: advanced indexing, ``index_select``, ``gather``, the scatters that write a slice,
a select or indexed values (``index_put``), and embedding lookups."""

from __future__ import annotations

import jax.numpy as jnp

from interop._src.lowering.ops._helpers import slice_bounds
from interop._src.lowering.ops.registry import op


@op("aten.index.Tensor")
def index(x, indices):
    return x[tuple(slice(None) if i is None else i for i in indices)]


@op("aten.index_select.default")
def index_select(x, dim, index):
    return jnp.take(x, index, axis=dim)


@op("aten.gather.default")
def gather(x, dim, index, *, sparse_grad=False):
    return jnp.take_along_axis(x, index, axis=dim)


@op("aten.index_put.default")
def index_put(x, indices, values, accumulate=False):
    ref = x.at[tuple(slice(None) if i is None else i for i in indices)]
    return ref.add(values) if accumulate else ref.set(values.astype(x.dtype))


@op("aten.slice_scatter.default")
def slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    dim, start, end = slice_bounds(x, dim, start, end)
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(start, end, step)
    return x.at[tuple(idx)].set(src.astype(x.dtype))


@op("aten.select_scatter.default")
def select_scatter(x, src, dim, index):
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    return x.at[tuple(idx)].set(src.astype(x.dtype))


@op("aten.embedding.default")
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return jnp.take(weight, indices, axis=0)

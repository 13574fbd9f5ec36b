"""Indexing: advanced indexing, ``index_select``, ``gather``, the scatters that write a slice,
a select or indexed values (``index_put``), and embedding lookups.

A boolean mask index reading values (``x[mask]``) has as many rows as the mask has True
elements: lowered only where torch.export's guards pinned that count, else refused. Writing
through a mask (``x[mask] = v``) keeps ``x``'s shape and always lowers.
"""

from __future__ import annotations

import jax.numpy as jnp
import torch

from interop._src.lowering.ops._helpers import needs_static_shape, shape_from_data, slice_bounds
from interop._src.lowering.ops.registry import op

_MASKS = (torch.bool, torch.uint8)


def _mask_positions(node: torch.fx.Node) -> tuple[list[int], int]:
    """The positions of boolean mask indices in an index list, and how many are tensors."""
    indices = node.args[1]
    vals = [i.meta.get("val") if isinstance(i, torch.fx.Node) else None for i in indices]
    masks = [p for p, v in enumerate(vals) if v is not None and v.dtype in _MASKS]
    return masks, sum(v is not None for v in vals)


def _mixed_masks(node: torch.fx.Node) -> str | None:
    masks, tensors = _mask_positions(node)
    if masks and tensors > 1:
        return "a boolean mask index alongside other index tensors"
    return None


def _index_refusal(node: torch.fx.Node) -> str | None:
    if _mask_positions(node)[0] and shape_from_data(node):
        return needs_static_shape(
            "indexing with a boolean mask (x[mask]): its output size (the count of True "
            "mask elements)",
            "keep the shape with torch.where(mask, x, 0) or x.masked_fill(~mask, value)",
        )
    return _mixed_masks(node)


def _masks(indices) -> list[int]:
    return [p for p, i in enumerate(indices) if i is not None and i.dtype in (jnp.bool_, jnp.uint8)]


def _indices(indices):
    return tuple(slice(None) if i is None else i for i in indices)


@op("aten.index.Tensor", refuses=_index_refusal, recorded=True)
def index(x, indices, *, recorded=None):
    found = _masks(indices)
    if not found:
        return x[_indices(indices)]
    # the one mask (the check refuses others) as its True positions, as many as torch recorded
    p = found[0]
    count = recorded.shape[p]
    where = jnp.nonzero(indices[p].astype(bool), size=count)
    return x[(*_indices(indices[:p]), *where, *_indices(indices[p + 1 :]))]


@op("aten.index_select.default")
def index_select(x, dim, index):
    if x.ndim == 0:  # a 0-d input is indexed by one 0 (torch keeps it 0-d)
        return x
    return jnp.take(x, index.reshape(-1), axis=dim)


@op("aten.gather.default")
def gather(x, dim, index, *, sparse_grad=False):
    if index.size == 0:  # an empty index may have any rank
        return jnp.zeros(index.shape, x.dtype)
    if x.ndim == 0:
        return x.reshape(index.shape)
    dim = dim % x.ndim
    # the index may be smaller than x along the other dims: those rows are read from x's start
    crop = tuple(slice(None) if d == dim else slice(0, s) for d, s in enumerate(index.shape))
    return jnp.take_along_axis(x[crop], index, axis=dim)


@op("aten.index_put.default", refuses=_mixed_masks)
def index_put(x, indices, values, accumulate=False):
    values = values.astype(x.dtype)
    masks = _masks(indices)
    if masks:
        return _put_masked(x, masks[0], indices[masks[0]].astype(bool), values, accumulate)
    ref = x.at[_indices(indices)]
    return ref.add(values) if accumulate else ref.set(values)


def _put_masked(x, p, mask, values, accumulate):
    """``x[..., mask, ...] = values`` (the mask over dims ``p ..``) with x's shape kept: the
    values broadcast over the True positions, or, one per True position, are taken in order."""
    k = mask.ndim
    lead, rest = x.shape[:p], x.shape[p + k :]
    rows = len(lead) + 1 + len(rest)  # the indexing result: lead + (count,) + rest
    if values.ndim > rows:  # leading 1s beyond the result's rank
        values = values.reshape(values.shape[values.ndim - rows :])
    at = values.ndim - (rows - p)  # the count axis in values, if values reach it
    if at < 0 or values.shape[at] == 1:
        v = jnp.broadcast_to(values, (*lead, 1, *rest)).reshape(*lead, *(1,) * k, *rest)
    else:
        v = jnp.broadcast_to(values, (*lead, values.shape[at], *rest))
        rank = (jnp.cumsum(mask.reshape(-1)) - 1).reshape(mask.shape)
        v = jnp.take(v, jnp.clip(rank, 0, values.shape[at] - 1), axis=p)
    m = mask.reshape((1,) * p + mask.shape + (1,) * len(rest))
    if accumulate:
        return x + jnp.where(m, v, jnp.zeros((), x.dtype))
    return jnp.where(m, v, x)


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

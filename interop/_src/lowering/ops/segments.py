"""Reductions over data-given segments of static count: ``segment_reduce`` and ``embedding_bag``.

The segment boundaries are tensors (their values may change from call to call) but the number
of segments is their length, so the output shape is static: each position's segment is found
by comparing it with the boundaries, and the reduction is masked (``segment_reduce``) or a
scatter into the segments (``embedding_bag``). Sums accumulate in float32 for low precision.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import torch

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op

_EMPTY = {"sum": 0.0, "prod": 1.0, "max": -jnp.inf, "min": jnp.inf, "mean": 0.0}


def _segment_mask(offsets, length: int):
    """``(..., S, L)``: whether position ``l`` lies in segment ``s`` (``offsets`` ``(..., S+1)``)."""
    pos = jnp.arange(length)
    return (offsets[..., :-1, None] <= pos) & (pos < offsets[..., 1:, None])


def _refuses_segment(node: torch.fx.Node) -> str | None:
    if node.kwargs.get("indices") is not None:
        return "indices= (torch itself does not support it; pass lengths= or offsets=)"
    return None


@op("aten.segment_reduce.default", refuses=_refuses_segment)
def segment_reduce(
    data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None
):
    axis = axis % data.ndim
    if offsets is None:
        zero = jnp.zeros((*lengths.shape[:-1], 1), lengths.dtype)
        offsets = jnp.concatenate([zero, jnp.cumsum(lengths, axis=-1)], axis=-1)
    mask = _segment_mask(offsets, data.shape[axis])  # (*lead, S, L)
    mask = mask.reshape(mask.shape + (1,) * (data.ndim - axis - 1))
    x = jnp.expand_dims(up(data), axis)  # (*lead, 1, L, *rest)
    init = _EMPTY[reduce] if initial is None else float(initial)
    if reduce in ("sum", "mean"):
        total = jnp.sum(jnp.where(mask, x, 0), axis=axis + 1) + init
    elif reduce == "prod":
        total = jnp.prod(jnp.where(mask, x, 1), axis=axis + 1) * init
    else:
        pick = jnp.max if reduce == "max" else jnp.min
        total = pick(jnp.where(mask, x, init), axis=axis + 1)
    if reduce == "mean":
        count = jnp.sum(mask, axis=axis + 1)
        empty = jnp.nan if initial is None else init  # ATen: 0 / 0, or the initial value
        total = jnp.where(count > 0, total / jnp.maximum(count, 1), empty)
    return total.astype(data.dtype)


_SUM, _MEAN, _MAX = 0, 1, 2


def _refuses_bag(node: torch.fx.Node) -> str | None:
    """``embedding_bag``'s bookkeeping outputs (offset2bag, bag sizes, argmax) are not computed."""
    used = any(u.target is operator.getitem and u.args[1] != 0 and u.users for u in node.users)
    return "its offset2bag / bag_size / max_indices outputs" if used else None


@op(
    "aten._embedding_bag_forward_only.default",
    "aten._embedding_bag.default",
    refuses=_refuses_bag,
)
def embedding_bag(
    weight,
    indices,
    offsets,
    scale_grad_by_freq=False,
    mode=_SUM,
    sparse=False,
    per_sample_weights=None,
    include_last_offset=False,
    padding_idx=-1,
):
    n = offsets.shape[0] - 1 if include_last_offset else offsets.shape[0]
    starts = offsets[:n]
    # each index's bag: the last bag starting at or before it (empty bags are skipped over)
    bag = jnp.searchsorted(starts, jnp.arange(indices.shape[0]), side="right") - 1
    if include_last_offset:  # indices past the last offset belong to no bag
        bag = jnp.where(jnp.arange(indices.shape[0]) < offsets[n], bag, n)
    keep = indices != padding_idx if padding_idx >= 0 else jnp.ones(indices.shape, bool)
    bag = jnp.where(keep, bag, n)  # padding rows go to a bag past the end, dropped
    rows = up(weight)[indices]
    if mode == _MAX:
        out = jax.ops.segment_max(rows, bag, num_segments=n)
        count = jax.ops.segment_sum(jnp.ones_like(bag), bag, num_segments=n)
        return jnp.where(count[:, None] > 0, out, 0).astype(weight.dtype), None, None, None
    if per_sample_weights is not None:
        rows = rows * up(per_sample_weights)[:, None]
    out = jax.ops.segment_sum(rows, bag, num_segments=n)
    if mode == _MEAN:
        count = jax.ops.segment_sum(jnp.ones_like(bag), bag, num_segments=n)
        out = out / jnp.maximum(count, 1)[:, None]
    return out.astype(weight.dtype), None, None, None

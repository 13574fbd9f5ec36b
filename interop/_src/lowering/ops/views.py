"""Shapes and layouts: reshapes and views, transposes, broadcasting, squeezing, joins and
splits, slices and selects, padding, rolls and flips, repeats, triangles, ``as_strided``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from interop._src.lowering.ops._helpers import slice_bounds
from interop._src.lowering.ops.registry import op


@op(
    "aten.view.default",
    "aten._unsafe_view.default",
    "aten.reshape.default",
    "aten.view_copy.default",
)
def view(x, size):
    return jnp.reshape(x, tuple(size))


@op("aten.permute.default")
def permute(x, dims):
    return jnp.transpose(x, tuple(dims))


@op("aten.transpose.int")
def transpose(x, dim0, dim1):
    return jnp.swapaxes(x, dim0, dim1)


@op("aten.t.default")
def t(x):
    return x.T


@op("aten.expand.default")
def expand(x, size, *, implicit=False):
    size = tuple(size)
    lead = len(size) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(size))
    return jnp.broadcast_to(x, shape)


@op(
    "aten.clone.default",
    "aten.alias.default",
    "aten.lift_fresh_copy.default",
    "aten.detach.default",
    "aten.contiguous.default",
)
def clone(x, *, memory_format=None):
    return x


@op("aten.unsqueeze.default")
def unsqueeze(x, dim):
    return jnp.expand_dims(x, dim if dim >= 0 else dim + x.ndim + 1)


@op("aten.squeeze.dims", "aten.squeeze.dim", "aten.squeeze.default")
def squeeze(x, dim=None):
    dims = range(x.ndim) if dim is None else ([dim] if isinstance(dim, int) else dim)
    return jnp.squeeze(x, tuple(d for d in dims if x.shape[d] == 1))


@op("aten.cat.default")
def cat(tensors, dim=0):
    # ATen skips legacy empty 1-D tensors of shape (0,) whatever the others' rank
    parts = [a for a in tensors if not (a.ndim == 1 and a.shape[0] == 0)] or list(tensors)
    dtype = jnp.result_type(*parts)
    return jnp.concatenate([a.astype(dtype) for a in parts], axis=dim)


@op("aten.stack.default")
def stack(tensors, dim=0):
    return jnp.stack(tensors, axis=dim)


@op("aten.slice.Tensor")
def slice_(x, dim=0, start=None, end=None, step=1):
    dim, start, end = slice_bounds(x, dim, start, end)
    return lax.slice_in_dim(x, start, end, step, axis=dim)


@op("aten.select.int")
def select(x, dim, index):
    return jnp.take(x, index, axis=dim) if not isinstance(index, int) else _select(x, dim, index)


def _select(x, dim, index):
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    return x[tuple(idx)]


@op("aten.split_with_sizes.default")
def split_with_sizes(x, split_sizes, dim=0):
    return jnp.split(x, np.cumsum(split_sizes)[:-1].tolist(), axis=dim)


@op("aten.split.Tensor")
def split(x, split_size, dim=0):
    n = x.shape[dim]
    return jnp.split(x, list(range(split_size, n, split_size)), axis=dim)


@op("aten.unbind.int")
def unbind(x, dim=0):
    return [_select(x, dim, i) for i in range(x.shape[dim])]


@op("aten.constant_pad_nd.default")
def constant_pad_nd(x, pad, value=0):
    # pad = (last_lo, last_hi, second_last_lo, ...); negative amounts crop (lax.pad does both)
    cfg = [(0, 0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        cfg[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1], 0)
    return lax.pad(x, jnp.asarray(value, x.dtype), cfg)


@op("aten.roll.default")
def roll(x, shifts, dims=()):
    if not dims:
        return jnp.roll(x.reshape(-1), shifts).reshape(x.shape)
    return jnp.roll(x, tuple(shifts), tuple(dims))


@op("aten.flip.default")
def flip(x, dims):
    return jnp.flip(x, tuple(dims))


@op("aten.repeat.default")
def repeat(x, repeats):
    return jnp.tile(x, tuple(repeats))


@op("aten.tril.default")
def tril(x, diagonal=0):
    return jnp.tril(x, diagonal)


@op("aten.triu.default")
def triu(x, diagonal=0):
    return jnp.triu(x, diagonal)


def _non_contiguous_input(node: torch.fx.Node) -> str | None:
    """The refusal of ``as_strided`` (its strides index a contiguous buffer)."""
    arg = node.args[0]
    val: Any = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
    return None if val is not None and val.is_contiguous() else "on a non-contiguous input"


@op("aten.as_strided.default", refuses=_non_contiguous_input)
def as_strided(x, size, stride, storage_offset=None):
    # valid on a contiguous input (the check refuses others before lowering)
    idx = storage_offset or 0
    for n, s in zip(size, stride, strict=True):
        idx = np.add.outer(idx, np.arange(n) * s) if n else np.zeros((0,), np.int64)
    return jnp.take(x.reshape(-1), jnp.asarray(np.asarray(idx, np.int64).reshape(tuple(size))))

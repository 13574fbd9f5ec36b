"""Shapes and layouts: reshapes and views, transposes, broadcasting, squeezing, joins and
splits, slices and selects, padding, rolls and flips, repeats, triangles, ``as_strided``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from interop._src.lowering.ops._helpers import shape_from_data, slice_bounds
from interop._src.lowering.ops.registry import op


@op(
    "aten.view.default",
    "aten._unsafe_view.default",
    "aten.reshape.default",
    "aten.view_copy.default",
)
def view(x, size):
    return jnp.reshape(x, tuple(size))


@op("aten.permute.default", "aten.permute_copy.default")
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
    if x.ndim == 0:  # torch accepts dim 0 / -1 of a 0-d tensor and returns it unchanged
        return x
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


@op("aten.unbind.int", "aten.unbind_copy.int")
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


@op("aten.diagonal.default")
def diagonal(x, offset=0, dim1=0, dim2=1):
    return jnp.diagonal(x, offset, dim1, dim2)


@op("aten.narrow_copy.default")
def narrow_copy(x, dim, start, length):
    start = start + x.shape[dim] if start < 0 else start
    return lax.slice_in_dim(x, start, start + length, axis=dim)


@op("aten.unfold.default")
def unfold(x, dimension, size, step):
    """Windows of ``size`` every ``step`` along ``dimension``, as a new last axis: one strided
    slice per window offset (no gather; the unfolded axis may be the symbolic batch)."""
    if x.ndim == 0:
        return x.reshape(1)
    dim = dimension % x.ndim
    count = (x.shape[dim] - size) // step + 1
    if size == 0:
        return jnp.zeros((*x.shape[:dim], count, *x.shape[dim + 1 :], 0), x.dtype)
    parts = [
        lax.slice_in_dim(x, k, k + (count - 1) * step + 1, step, axis=dim) for k in range(size)
    ]
    return jnp.stack(parts, axis=-1)


def _strided_refusal(node: torch.fx.Node) -> str | None:
    """Why ``as_strided`` (or its copy or scatter) cannot address ``node``'s input as torch
    does: its strides index the input's storage, which is the array only for a contiguous
    tensor that starts its storage and holds every element addressed."""
    val: Any = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
    size, stride, offset = _strided_args(node)
    if "scatter" not in str(node.target) and _restride(val, size, stride, offset):
        return None
    if val is None or not all(isinstance(v, int) for v in (*size, *stride, offset, val.numel())):
        return "with symbolic sizes or strides"
    if not val.is_contiguous():
        return "on a non-contiguous input"
    if val.storage_offset():
        return "on a view into a larger tensor (its offset addresses the base's storage)"
    idx = _strided_index(size, stride, offset)
    if min(stride, default=0) < 0 or (idx.size and idx.max() >= val.numel()):
        return (
            "addressing elements outside its input (a view's base storage, which a function "
            "of the input's values cannot read)"
        )
    if "scatter" in str(node.target) and np.unique(idx).size != idx.size:
        return "writing overlapping elements (which write wins is torch's memory order)"
    return None


def _restride(val: Any, size: list, stride: list, offset: Any) -> bool:
    """Whether the view is its contiguous input itself, only its strides of size-1 axes told
    apart (what torch's decompositions write to restore a memory format, e.g. adaptive
    average pooling to 1x1 of a channels-last tensor): the same shape, and the contiguous
    stride on every axis longer than 1. Symbolic sizes compare by their symbol."""
    if val is None or offset not in (0, None) or len(size) != val.dim():
        return False
    try:
        if not val.is_contiguous() or val.storage_offset() != 0:
            return False
    except Exception:  # a layout fact torch cannot decide for symbolic sizes
        return False
    shape = [str(n) for n in val.shape]
    if [str(_meta(n)) for n in size] != shape:
        return False
    want = 1
    for n, s in reversed(list(zip(val.shape, stride, strict=True))):
        if str(n) != "1" and str(_meta(s)) != str(want):
            return False
        want = want * n
    return True


def _meta(v: Any) -> Any:
    """A size argument as torch recorded it: an fx node's value (a SymInt), else itself."""
    return v.meta.get("val", v) if isinstance(v, torch.fx.Node) else v


def _strided_args(node: torch.fx.Node) -> tuple[list, list, Any]:
    args = [*node.args[1:], None, None, None]
    if "scatter" in str(node.target):
        args = args[1:]  # after src
    offset = node.kwargs.get("storage_offset", args[2])
    return list(args[0]), list(args[1]), 0 if offset is None else offset


def _strided_index(size, stride, offset) -> np.ndarray:
    """The flat index of each element of the strided view."""
    idx: Any = offset
    for n, s in zip(size, stride, strict=True):
        idx = np.add.outer(idx, np.arange(n) * s) if n else np.zeros((0,), np.int64)
    return np.asarray(idx, np.int64).reshape(tuple(size))


def _offset_from_data(node: torch.fx.Node) -> str | None:
    return "an offset that depends on the data" if shape_from_data(node) else None


@op("aten.sym_storage_offset.default", refuses=_offset_from_data, recorded=True)
def sym_storage_offset(x, *, recorded):
    return recorded  # a view's offset into its base: torch's record has it


@op("aten.as_strided.default", "aten.as_strided_copy.default", refuses=_strided_refusal)
def as_strided(x, size, stride, storage_offset=None):
    # exact on the inputs the check lets through (contiguous, from their storage's start);
    # a restride of the whole input (see _restride) is the input itself
    if not all(isinstance(v, int) for v in (*size, *stride)):
        return x
    idx = _strided_index(size, stride, storage_offset or 0)
    return jnp.take(x.reshape(-1), jnp.asarray(idx))


@op("aten.as_strided_scatter.default", refuses=_strided_refusal)
def as_strided_scatter(x, src, size, stride, storage_offset=None):
    idx = _strided_index(size, stride, storage_offset or 0)
    flat = x.reshape(-1).at[jnp.asarray(idx)].set(src.astype(x.dtype))
    return flat.reshape(x.shape)

"""Sorting and selection: ``sort``, ``topk``, ``kthvalue``, ``median`` / ``nanmedian``, ``mode``,
``searchsorted`` and ``bucketize``.

Every order is one stable sort with torch's order of values: NaN above +inf (last ascending,
first descending), -0.0 equal to 0.0, ties in their input order. torch's unstable CPU sort
orders ties in a way no contract fixes; the stable order is one of the orders it allows (and
the one it gives on rows of up to 16 elements).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops.registry import op


def _rows(fn):
    """Run ``fn(x, dim, ...)`` on a 0-d ``x`` as on a 1-element row, results back to 0-d."""

    def run(x, dim, *args, **kwargs):
        if x.ndim:
            return fn(x, dim % x.ndim, *args, **kwargs)
        out = fn(x.reshape(1), 0, *args, **kwargs)
        return tuple(o.reshape(o.shape[1:]) if o.ndim else o for o in out)

    return run


def _order(x, dim, descending=False):
    """Indices sorting ``x`` along ``dim``, stable, NaN above everything (torch's order)."""
    return jnp.argsort(x, axis=dim, stable=True, descending=descending)


def _pick(x, idx, dim, keepdim):
    """Values of ``x`` at ``idx`` (keepdim-shaped along ``dim``), and the indices."""
    values = jnp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        values, idx = jnp.squeeze(values, dim), jnp.squeeze(idx, dim)
    return values, idx


@op("aten.sort.default", "aten.sort.stable")
def sort(x, dim=-1, descending=False, *, stable=None):
    return _rows(_sort)(x, dim, descending)


def _sort(x, dim, descending):
    idx = _order(x, dim, descending)
    return jnp.take_along_axis(x, idx, axis=dim), idx


@op("aten.topk.default")
def topk(x, k, dim=-1, largest=True, sorted=True):
    # sorted=False leaves the order to the kernel: the sorted order is one it allows
    return _rows(_topk)(x, dim, k, largest)


def _topk(x, dim, k, largest):
    idx = lax.slice_in_dim(_order(x, dim, descending=largest), 0, k, axis=dim)
    return jnp.take_along_axis(x, idx, axis=dim), idx


@op("aten.kthvalue.default")
def kthvalue(x, k, dim=-1, keepdim=False):
    return _rows(_kth)(x, dim, k, keepdim)


def _kth(x, dim, k, keepdim):
    idx = lax.slice_in_dim(_order(x, dim), k - 1, k, axis=dim)
    return _pick(x, idx, dim, keepdim)


def _median(x, dim, keepdim, ignore_nan):
    """torch's lower median: the ``(n - 1) // 2``-th value; a row with a NaN gives its first
    NaN (``median``) or the median of the others (``nanmedian``; NaN when all are)."""
    n = x.shape[dim]
    nans = jnp.sum(jnp.isnan(x), axis=dim, keepdims=True) if _inexact(x) else 0
    if ignore_nan:  # C++'s (n - nans - 1) / 2 truncates -1 / 2 to 0 on an all-NaN row
        k = jnp.maximum((n - nans - 1) // 2, 0)
    else:  # the first NaN in input order is the first in the stable order
        k = jnp.where(nans > 0, n - nans, (n - 1) // 2)
    order = _order(x, dim)
    at = jnp.broadcast_to(k, (*order.shape[:dim], 1, *order.shape[dim + 1 :]))
    return _pick(x, jnp.take_along_axis(order, at, axis=dim), dim, keepdim)


def _inexact(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


@op("aten.median.dim")
def median_dim(x, dim, keepdim=False):
    return _rows(_median)(x, dim, keepdim, False)


@op("aten.nanmedian.dim")
def nanmedian_dim(x, dim, keepdim=False):
    return _rows(_median)(x, dim, keepdim, True)


@op("aten.median.default")
def median(x):
    return _median(x.reshape(-1), 0, False, False)[0]


@op("aten.nanmedian.default")
def nanmedian(x):
    return _median(x.reshape(-1), 0, False, True)[0]


@op("aten.mode.default")
def mode(x, dim=-1, keepdim=False):
    return _rows(_mode)(x, dim, keepdim)


def _mode(x, dim, keepdim):
    """torch's CPU ``mode``: the most frequent value, the smallest among equally frequent
    ones, at the last index holding it (its count runs over a sorted copy of the row)."""
    x = jnp.moveaxis(x, dim, -1)
    order = _order(x, -1)
    s = jnp.take_along_axis(x, order, axis=-1)
    pos = lax.broadcasted_iota(jnp.int32, s.shape, s.ndim - 1)
    new = jnp.concatenate([jnp.ones_like(s[..., :1], bool), s[..., 1:] != s[..., :-1]], axis=-1)
    start = lax.cummax(jnp.where(new, pos, 0), axis=s.ndim - 1)
    last = jnp.concatenate([new[..., 1:], jnp.ones_like(new[..., :1])], axis=-1)
    best = jnp.argmax(jnp.where(last, pos - start + 1, 0), axis=-1, keepdims=True)
    values = jnp.take_along_axis(s, best, axis=-1)
    idx = jnp.take_along_axis(order, best, axis=-1)
    values, idx = jnp.moveaxis(values, -1, dim), jnp.moveaxis(idx, -1, dim)
    if not keepdim:
        values, idx = jnp.squeeze(values, dim), jnp.squeeze(idx, dim)
    return values, idx


@op("aten.searchsorted.Tensor", "aten.searchsorted.Scalar")
def searchsorted(sorted_sequence, x, *, out_int32=False, right=False, side=None, sorter=None):
    seq = sorted_sequence
    if sorter is not None:
        seq = jnp.take_along_axis(seq, sorter, axis=-1)
    return _search(seq, jnp.asarray(x), right or side == "right")


@op("aten.bucketize.Tensor", "aten.bucketize.Scalar")
def bucketize(x, boundaries, *, out_int32=False, right=False):
    return _search(boundaries, jnp.asarray(x), right)


def _search(seq, x, right):
    """torch's binary search, step for step (so NaNs land where torch's land): the first
    ``i`` with ``seq[i] > v`` (``right``) or ``seq[i] >= v``, else ``len(seq)``, per value."""
    dtype = jnp.result_type(seq, x)
    seq, x = seq.astype(dtype), x.astype(dtype)
    n = seq.shape[-1]
    lo = jnp.zeros(x.shape, jnp.int32)
    hi = jnp.full(x.shape, n, jnp.int32)
    # enough halvings for n (an int32 size's worth where n is the symbolic batch)
    for _ in range(n.bit_length() if isinstance(n, int) else 32):
        mid = (lo + hi) // 2
        at = jnp.minimum(mid, n - 1)  # n >= 1 wherever the loop runs
        m = jnp.take(seq, at) if seq.ndim == 1 else jnp.take_along_axis(seq, at, axis=-1)
        go = ~(m > x) if right else ~(m >= x)
        active = lo < hi
        lo = jnp.where(active & go, mid + 1, lo)
        hi = jnp.where(active & ~go, mid, hi)
    return lo

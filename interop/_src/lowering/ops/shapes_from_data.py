"""Ops whose output size depends on the data: ``nonzero``, ``masked_select``, ``unique``,
``unique_consecutive`` and ``repeat_interleave`` by a tensor (``nonzero_static``, whose size is
an argument, is here too), and a tensor's value read as a Python number (``x.item()``).

torch.export records such a size as an unbacked symbol (``u0``). JAX needs every shape at
trace time, so these ops lower only where torch.export's guards pinned the size to a number
(a ``torch._check(n == N)`` in the forward): the function then takes the size from the
recorded output. A pinned size is the forward's own promise; JAX cannot check it at run time
as torch's runtime assertion does. Elsewhere the build-time check refuses the op, saying what
keeps the shape static instead.
"""

from __future__ import annotations

import jax.numpy as jnp
import torch

from interop._src.lowering.ops._helpers import data_sized, needs_static_shape, shape_from_data
from interop._src.lowering.ops.registry import op


def _refuses(what: str, instead: str):
    def refuses(node: torch.fx.Node) -> str | None:
        return needs_static_shape(what, instead) if shape_from_data(node) else None

    return refuses


def _positions(x, size, fill_value=0):
    """The indices of ``x``'s nonzero elements, ``(size, x.ndim)``, padded with ``fill_value``."""
    if x.ndim == 0:
        return jnp.zeros((size, 0), jnp.int32)
    return jnp.stack(jnp.nonzero(x, size=size, fill_value=fill_value), axis=1)


@op(
    "aten.nonzero.default",
    refuses=_refuses(
        "its output size (the count of nonzero elements)",
        "keep the shape with torch.where or masked_fill, or bound the count with "
        "torch.nonzero_static(x, size=N)",
    ),
    recorded=True,
)
def nonzero(x, *, recorded):
    return _positions(x, recorded.shape[0])


@op("aten.nonzero_static.default")
def nonzero_static(x, *, size, fill_value=-1):
    return _positions(x, size, fill_value)


@op(
    "aten.masked_select.default",
    refuses=_refuses(
        "its output size (the count of True mask elements)",
        "keep the shape with torch.where(mask, x, 0) or x.masked_fill(~mask, value)",
    ),
    recorded=True,
)
def masked_select(x, mask, *, recorded):
    x, mask = jnp.broadcast_arrays(x, mask)
    (where,) = jnp.nonzero(mask.reshape(-1), size=recorded.shape[0])
    return x.reshape(-1)[where]


_UNIQUE = "sort (torch.sort) and compare neighbours (s[1:] != s[:-1]) to keep a static shape"


@op(
    "aten._unique2.default",
    refuses=_refuses("its output size (the count of distinct values)", _UNIQUE),
    recorded=True,
)
def unique(x, sorted=True, return_inverse=False, return_counts=False, *, recorded):
    # torch's CPU unique sorts whatever sorted= says; NaNs are each distinct
    values, inverse, counts = jnp.unique(
        x.reshape(-1), return_inverse=True, return_counts=True, size=recorded[0].shape[0],
        equal_nan=False,
    )  # fmt: skip
    return values, _maybe(inverse.reshape(x.shape), return_inverse), _maybe(counts, return_counts)


def _maybe(a, wanted):
    """An output torch returns empty when it was not asked for."""
    return a if wanted else jnp.zeros((0,), a.dtype)


@op(
    "aten.unique_consecutive.default",
    refuses=_refuses("its output size (the count of runs of equal values)", _UNIQUE),
    recorded=True,
)
def unique_consecutive(x, return_inverse=False, return_counts=False, dim=None, *, recorded):
    a, axis = (x.reshape(-1), 0) if dim is None else (x, dim % x.ndim)
    rows = jnp.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    new = jnp.concatenate([jnp.ones((1,), bool), jnp.any(rows[1:] != rows[:-1], axis=1)])
    run = jnp.cumsum(new) - 1
    n = recorded[0].shape[axis]
    (starts,) = jnp.nonzero(new, size=n)
    counts = jnp.zeros((n,), run.dtype).at[run].add(1)
    inverse = run.reshape(x.shape) if dim is None else run
    values = jnp.take(a, starts, axis=axis)
    return values, _maybe(inverse, return_inverse), _maybe(counts, return_counts)


@op(
    "aten.unique_dim.default",
    refuses=_refuses("its output size (the count of distinct slices)", _UNIQUE),
    recorded=True,
)
def unique_dim(x, dim, sorted=True, return_inverse=False, return_counts=False, *, recorded):
    """Distinct slices along ``dim`` in lexicographic order (torch's), their counts, and each
    slice's group: a lexicographic sort, then ``unique_consecutive`` of the sorted slices."""
    dim = dim % x.ndim
    rows = jnp.moveaxis(x, dim, 0).reshape(x.shape[dim], -1)
    order = jnp.lexsort(rows.T[::-1]) if rows.shape[1] else jnp.arange(rows.shape[0])
    values, run, counts = unique_consecutive(
        jnp.take(x, order, axis=dim), True, True, dim, recorded=recorded
    )
    inverse = jnp.zeros_like(run).at[order].set(run)
    return values, _maybe(inverse, return_inverse), _maybe(counts, return_counts)


def _sizes_a_tensor(node: torch.fx.Node) -> str | None:
    """The refusal of ``x.item()`` when its value reaches a tensor's size (``torch.zeros(n)``,
    ``x[:n]``), directly or through size arithmetic; as an index or in arithmetic on
    tensors it is a JAX scalar like any other."""
    todo, seen = list(node.users), set()
    while todo:
        user = todo.pop()
        if user in seen:
            continue
        seen.add(user)
        val = user.meta.get("val")
        if isinstance(val, torch.Tensor):
            if data_sized(val):
                return needs_static_shape(
                    "a size taken from a tensor's value (x.item())",
                    "use a Python number for the size, or mask a tensor of fixed size",
                )
        else:  # a number computed from it: follow it
            todo.extend(user.users)
    return None


@op("aten._local_scalar_dense.default", refuses=_sizes_a_tensor)
def local_scalar_dense(x):
    return x


@op(
    "aten.repeat_interleave.Tensor",
    refuses=_refuses(
        "its output size (the sum of the repeats)",
        "pass output_size=N to torch.repeat_interleave, or repeat by a Python int",
    ),
    recorded=True,
)
def repeat_interleave(repeats, *, output_size=None, recorded):
    """Each position ``i`` repeated ``repeats[i]`` times (the index ``repeat_interleave`` on a
    tensor decomposes to), as many as torch recorded (``output_size`` where given)."""
    n = recorded.shape[0]
    return jnp.repeat(jnp.arange(repeats.shape[0]), repeats, total_repeat_length=n)

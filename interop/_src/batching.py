"""Calls under ``jax.vmap`` with ``vmap_method="expand_dims"``: the callback's operands carry
the vmapped axes in front (size 1 where an operand is not batched).

* `folded_call` runs the forward once, folding the vmapped axes into the batch axis (which
  assumes batch elements are independent, as in an eval-mode backbone); vmapped params
  need a loop, one call per element.
* `batched_vjp` runs the vjp per element in one ``torch.func.vmap``, since per-example
  parameter gradients cannot come from one folded call (that sums them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import torch


def folded_call(
    run: Callable[[Mapping[str, Any], Any], Any],
    params: Mapping[str, Any],
    x: Any,
    spec: Any,
    x_ndim: int,
) -> Any:
    """``run(params, x)`` once, folding any vmapped leading axes (``expand_dims``) into the
    batch axis; ``spec`` is the unbatched output structure. Torch or NumPy in and out."""
    extra = x.ndim - x_ndim
    if extra == 0:
        return run(params, x)
    lead = np.broadcast_shapes(x.shape[:extra], *(v.shape[:extra] for v in params.values()))
    params_batched = any(math.prod(v.shape[:extra]) != 1 for v in params.values())
    if not params_batched and x_ndim >= 1:
        n = x.shape[extra]
        if all(s.ndim >= 1 and s.shape[0] == n for s in jax.tree_util.tree_leaves(spec)):
            p = {k: v.reshape(v.shape[extra:]) for k, v in params.items()}
            merged = _broadcast(x, (*lead, *x.shape[extra:])).reshape((-1, *x.shape[extra + 1 :]))
            out = run(p, merged)
            return jax.tree_util.tree_map(lambda y, s: y.reshape((*lead, *s.shape)), out, spec)
    # Per-element params (vmap over params) or a backbone without a batch axis: a loop.
    outs = []
    for idx in np.ndindex(*lead):

        def pick(v: Any, idx: tuple = idx) -> Any:
            v = _broadcast(v, (*lead, *v.shape[extra:]))
            return v[idx]

        outs.append(run({k: pick(v) for k, v in params.items()}, pick(x)))
    return jax.tree_util.tree_map(lambda *ys: _stack(ys).reshape((*lead, *ys[0].shape)), *outs)


def _stack(ys: tuple) -> Any:
    return torch.stack(ys) if isinstance(ys[0], torch.Tensor) else np.stack(ys)


def _broadcast(v: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(v, torch.Tensor):
        return v.broadcast_to(shape)
    return np.broadcast_to(v, shape)


def lead_shape(tensors: list[Any], extra: int) -> tuple[int, ...]:
    """The broadcast leading ``extra`` axes (vmapped, ``expand_dims``) of ``tensors``."""
    return tuple(np.broadcast_shapes(*(tuple(t.shape[:extra]) for t in tensors)))


def fold(t: torch.Tensor, lead: tuple[int, ...], extra: int) -> tuple[torch.Tensor, int | None]:
    """``t`` with its ``extra`` leading axes as one axis 0 of size ``prod(lead)``, and its
    ``torch.func.vmap`` in_dim; an unbatched ``t`` (leading axes all 1) is squeezed, None."""
    rest = tuple(t.shape[extra:])
    if math.prod(t.shape[:extra]) == 1:
        return t.reshape(rest), None
    return t.broadcast_to((*lead, *rest)).reshape((math.prod(lead), *rest)), 0


def batched_vjp(
    vjp_one: Callable[[dict[str, torch.Tensor], torch.Tensor, list[torch.Tensor]], Any],
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    g: list[torch.Tensor],
    extra: int,
) -> Any:
    """``vjp_one(params, x, g)`` per vmapped element, in one ``torch.func.vmap`` where torch can.

    ``params``, ``x`` and the cotangent leaves ``g`` carry ``extra`` leading vmapped axes
    (``expand_dims``: size 1 where not batched). Returns ``vjp_one``'s output pytree with the
    broadcast leading axes in front. Per-example gradients need a per-element vjp (folding
    the vmapped axis into the batch would sum the parameter gradients over it), hence
    ``torch.func.vmap``; a model torch cannot vmap (an op whose batching rule raises, an
    in-place write of a batched value into a fresh tensor) falls back to a Python loop over
    the elements: the same values, slower. Ops with no batching rule at all (SDPA's CPU
    kernel in torch 2.14) are looped inside torch, which warns once about the slowdown.
    """
    lead = lead_shape([*params.values(), x, *g], extra)
    keys = list(params)
    folded = [fold(t, lead, extra) for t in [*params.values(), x, *g]]
    args = [t for t, _ in folded]
    dims = [d for _, d in folded]

    def call(*flat: torch.Tensor) -> Any:
        p = dict(zip(keys, flat[: len(keys)], strict=True))
        return vjp_one(p, flat[len(keys)], list(flat[len(keys) + 1 :]))

    if all(d is None for d in dims):  # every element alike: one call, repeated
        out = call(*args)
        return jax.tree_util.tree_map(lambda y: y.expand((*lead, *y.shape)).contiguous(), out)
    try:
        out = torch.func.vmap(call, in_dims=tuple(dims))(*args)
    except RuntimeError:
        outs = [
            call(*(t if d is None else t[i] for t, d in zip(args, dims, strict=True)))
            for i in range(math.prod(lead))
        ]
        out = jax.tree_util.tree_map(lambda *ys: torch.stack(ys), *outs)
    return jax.tree_util.tree_map(lambda y: y.reshape((*lead, *y.shape[1:])), out)

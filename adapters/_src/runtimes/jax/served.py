"""A cached ``jax.export`` artifact served as a forward that ``jit``, ``grad`` and ``vmap`` take.

``Exported.call`` runs a deserialised StableHLO module; JAX has no batching rule for it, so
``jax.vmap`` of it fails. `served_call` gives it one with `jax.custom_batching.custom_vmap`,
inside a `jax.custom_vjp` whose backward pass is the artifact's serialised VJP
(``Exported.vjp()``), since ``custom_vmap`` alone does not support reverse mode.

Forward under ``vmap``: the artifact takes a whole batch, so with shared params (``in_axes``
None for them) a vmapped axis of size ``n`` over inputs of batch ``b`` is folded into one call
on ``n * b`` rows, and the rows split back. That is exact only when row ``i`` of every output
depends on row ``i`` of the inputs alone, which the first build measures (``independent_rows``).
Otherwise (rows mixed, per-instance params, or a static batch) it is a loop of calls.

Backward under ``vmap``: always a loop. The cotangent of shared params must come out per
vmapped instance (JAX sums the instances where ``vmap`` sits inside ``grad`` and keeps them
apart for per-example gradients, and the rule cannot tell which), while one folded VJP could
give only their sum.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap, sequential_vmap

from .xla_options import compiler_options
from .xla_options import jit as xla_jit

#: ``(params, (input leaves...)) -> (output leaves...)``, as the artifact was exported
Flat = Callable[[Mapping[str, Any], tuple[Any, ...]], tuple[Any, ...]]


def served_call(exported: jax.export.Exported, independent_rows: bool) -> Flat:
    """``exported.call`` as a flat forward that ``jax.vmap`` batches and ``jax.grad`` derives.

    Args:
        exported: an artifact of a flat function ``(params, (leaves...)) -> (leaves...)``
            whose inputs and outputs all carry the batch on axis 0, with its VJP (serialised
            with ``vjp_order >= 1``, or freshly exported).
        independent_rows: the outputs' row ``i`` depends only on the inputs' row ``i``, and
            the batch axis is symbolic: a vmapped axis may then be folded into the batch.

    Returns:
        ``run(params, leaves) -> output leaves``; ``jit``, ``grad`` (first order) and ``vmap``
        over any arguments work on it.
    """
    vjp_exported = functools.cache(exported.vjp)  # exported (or read) on the first grad

    @custom_vmap
    def forward(params: Mapping[str, Any], xs: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(exported.call(params, xs))

    @forward.def_vmap
    def _forward_vmap(n: int, in_batched: list, params: Any, xs: Any) -> tuple[Any, Any]:
        p_batched, x_batched = in_batched
        if independent_rows and not any(jax.tree.leaves(p_batched)):
            ys = _folded(forward, n, params, xs, x_batched)
        else:
            ys = _looped(forward, in_batched, params, xs)
        return ys, tuple(True for _ in ys)

    @sequential_vmap
    def backward(params: Mapping[str, Any], xs: tuple[Any, ...], cts: tuple[Any, ...]) -> Any:
        flat_args = jax.tree.leaves(((params, xs), {}))
        n_args = len(flat_args)
        cts = [
            np.zeros(ct.shape, jax.dtypes.float0) if aval.dtype == jax.dtypes.float0 else ct
            for ct, aval in zip(cts, vjp_exported().in_avals[n_args:], strict=True)
        ]
        in_cts = vjp_exported().call(*flat_args, *cts)
        # integer inputs get no cotangent (None: a zero JAX need not carry through loops)
        in_cts = [None if c.dtype == jax.dtypes.float0 else c for c in in_cts]
        (p_ct, x_ct), _ = jax.tree.unflatten(exported.in_tree, in_cts)
        return p_ct, x_ct

    @jax.custom_vjp
    def run(params: Mapping[str, Any], xs: tuple[Any, ...]) -> tuple[Any, ...]:
        return forward(params, xs)

    def run_fwd(params: Mapping[str, Any], xs: tuple[Any, ...]) -> tuple[Any, Any]:
        return forward(params, xs), (params, xs)

    def run_bwd(res: tuple[Any, Any], cts: tuple[Any, ...]) -> tuple[Any, Any]:
        return backward(*res, tuple(cts))

    run.defvjp(run_fwd, run_bwd)
    return lambda params, xs: run(dict(params), tuple(xs))


def _folded(fn: Callable, n: int, params: Any, xs: tuple, x_batched: list) -> tuple:
    """``fn`` on the vmapped axis folded into the batch axis: ``(n, b, ...) -> (n * b, ...)``."""
    rows = [
        x if batched else jnp.broadcast_to(x, (n, *x.shape))
        for x, batched in zip(xs, x_batched, strict=True)
    ]
    b = rows[0].shape[1]
    ys = fn(params, tuple(x.reshape((n * b, *x.shape[2:])) for x in rows))
    return tuple(y.reshape((n, b, *y.shape[1:])) for y in ys)


def _looped(fn: Callable, in_batched: list, params: Any, xs: Any) -> tuple:
    """``fn`` once per instance of the vmapped axis (``lax.map`` over the batched arguments)."""
    args = [params, xs]
    mapped = jax.tree.map(lambda a, m: a if m else None, args, in_batched)
    shared = jax.tree.map(lambda a, m: None if m else a, args, in_batched)

    def one(instance: Any) -> tuple:
        merged = jax.tree.map(lambda m, a, s: a if m else s, in_batched, instance, shared)
        return tuple(fn(*merged))

    return jax.lax.map(one, mapped)


def independent_rows(cached: Any, check: Any, atol: float, rtol: float) -> bool:
    """Whether every output has the batch on axis 0 and its row ``i`` depends on the inputs'
    row ``i`` alone: the check batch whole against each of its rows alone.

    What lets a cache hit fold a ``jax.vmap`` axis into the batch (`served_call`); both
    JAX runtimes (torch and ONNX lowered) record it with their entries.
    """
    whole = jax.tree.leaves(cached.forward(cached.params, check))
    n = jax.tree.leaves(check)[0].shape[0]
    for i in range(n):
        row = jax.tree.map(lambda t, i=i: t[i : i + 1], check)
        alone = jax.tree.leaves(cached.forward(cached.params, row))
        for w, a in zip(whole, alone, strict=True):
            if w.ndim == 0 or w.shape[0] != n:
                return False
            w, a = (np.asarray(v, np.float64) for v in (w[i : i + 1], a))
            scale = float(np.abs(w).max()) if w.size else 0.0
            if not np.allclose(a, w, rtol=0, atol=atol + rtol * scale):
                return False
    return True


def cache_hit(
    loaded: tuple[Any, dict[str, Any]], platform: str, info: Mapping[str, Any]
) -> tuple[Flat, Any, dict[str, Any]]:
    """``(run, structure, info)`` of a cache entry's artifact: served with the first build's
    XLA options where they are still the ones this platform would try, and ``info`` with the
    first build's check as recorded in the entry."""
    exported, meta = loaded
    run = served_call(exported, meta.get("independent_rows") is True)
    options = meta.get("xla_options") or {}
    options = options if options == compiler_options(platform) else {}
    run = xla_jit(run, options) if options else run
    info = {**info, "cache": "hit", "xla_options": options}
    if "parity" in meta:
        info["parity"] = meta["parity"]
    return run, meta["structure"], info

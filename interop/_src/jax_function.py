"""Backbones callable from JAX: ``jax_function(adapter)`` and ``jax_params(adapter)``.

The adapter is duck-typed: ``adapter.forward(params, x)``, ``adapter.params`` (a dict of
arrays) and ``adapter.framework`` (``"torch"`` or ``"onnx"``). The returned ``f(params, x)``
runs the backbone through ``jax.pure_callback`` on the memory JAX hands it (shared with torch
via DLPack), so it works under ``jax.jit``; ``jax.vmap`` makes one batched backbone call (the
vmapped axis is folded into the batch axis, which assumes the backbone treats batch elements
independently, as backbones in eval mode do); ``jax.grad`` is a ``custom_vjp`` backed by
``torch.func.vjp`` (torch adapters only: the backward re-runs the forward under vjp).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from interop._src import arrays as _arr
from interop._src import dtypes as _dt
from interop._src import fast as _fast
from interop._src.bridge import to_jax

FRAMEWORKS = ("torch", "onnx")


def jax_params(adapter: Any, *, copy: bool | None = None) -> dict[str, jax.Array]:
    """The adapter's params as a dict of JAX arrays, sharing memory with the torch tensors.

    64-bit buffers (e.g. BatchNorm's ``num_batches_tracked``) are narrowed when
    ``jax_enable_x64`` is off (checked, see ``to_jax(downcast=True)``), so they are copies.
    Do not update the torch params in place while JAX holds them.
    """
    params = _check_adapter(adapter).params
    return to_jax(dict(params), copy=copy, downcast=True)


def _check_adapter(adapter: Any) -> Any:
    missing = [a for a in ("forward", "params", "framework") if not hasattr(adapter, a)]
    if missing:
        raise TypeError(
            f"jax_function: expected an adapter with forward, params and framework, got "
            f"{type(adapter).__name__} missing {missing}. Fix: pass adapters.build(spec)."
        )
    if adapter.framework not in FRAMEWORKS:
        raise ValueError(
            f"jax_function: adapter.framework must be one of {FRAMEWORKS}, got "
            f"{adapter.framework!r}. A JAX adapter is already a JAX function: call "
            "adapter.forward directly."
        )
    return adapter


def _sds(t: Any) -> jax.ShapeDtypeStruct:
    name = _dt.TORCH_TO_NAME[t.dtype] if isinstance(t, torch.Tensor) else np.dtype(t.dtype).name
    narrow = name if jax.config.jax_enable_x64 else _dt.X64_NARROW.get(name, name)
    return jax.ShapeDtypeStruct(tuple(t.shape), jnp.dtype(narrow))


def _key(params: Mapping[str, Any], x: Any) -> tuple:
    return (
        tuple((k, tuple(v.shape), str(v.dtype)) for k, v in sorted(params.items())),
        tuple(x.shape),
        str(x.dtype),
    )


def _torch_dtype(dtype: Any) -> torch.dtype:
    return _dt.NAME_TO_TORCH[
        np.dtype(dtype).name if np.dtype(dtype) != _dt.NUMPY_BFLOAT16 else "bfloat16"
    ]


def _as_numpy_out(y: Any, spec: jax.ShapeDtypeStruct) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = _arr.torch_to_numpy(y.detach().cpu())
    y = np.asarray(y)
    return y if y.dtype == spec.dtype else y.astype(spec.dtype)


def jax_function(adapter: Any) -> Callable[[Mapping[str, jax.Array], jax.Array], Any]:
    """A JAX function ``f(params, x)`` running ``adapter`` (torch or ONNX) on JAX's memory.

    Args:
        adapter: has ``forward(params, x)``, ``params`` and ``framework``.

    Returns:
        ``f(params, x) -> y`` of JAX arrays, ``params`` as from ``jax_params(adapter)`` and
        ``x`` of shape ``(batch, ...)``; ``y`` has the adapter's output structure, e.g.
        ``(batch, dim)``. Output shapes and dtypes come from evaluating the torch forward on
        fake tensors (ONNX: one real run on zeros), once per input shape and dtype; the cache
        is ``f.output_specs``.

    Raises:
        TypeError: not an adapter; ``jax.grad`` of an ONNX adapter (forward-only).

    Example:
        >>> f = jax.jit(interop.jax_function(backbone))
        >>> feats = f(interop.jax_params(backbone), x)          # (batch, dim)
        >>> g = jax.grad(lambda p, x: f(p, x).sum())(params, x)  # torch adapters
    """
    adapter = _check_adapter(adapter)
    framework, forward = adapter.framework, adapter.forward
    output_specs: dict[tuple, Any] = {}

    def out_spec(params: Mapping[str, Any], x: Any) -> Any:
        key = _key(params, x)
        if key not in output_specs:
            if framework == "torch":
                with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
                    fp = {
                        k: torch.empty(v.shape, dtype=_torch_dtype(v.dtype))
                        for k, v in params.items()
                    }
                    out = forward(fp, torch.empty(x.shape, dtype=_torch_dtype(x.dtype)))
            else:
                out = forward({}, np.zeros(x.shape, dtype=x.dtype))
            output_specs[key] = jax.tree_util.tree_map(_sds, out)
        return output_specs[key]

    # Host arrays: torch aliases of JAX's buffers (no copy), or NumPy views for ONNX.
    host_array = _torch_host if framework == "torch" else np.asarray

    def run(params: Mapping[str, Any], x: Any, spec: Any) -> Any:
        if framework == "torch":
            with torch.no_grad():
                out = forward(params, x)
        else:
            out = forward({}, np.ascontiguousarray(x))
        return jax.tree_util.tree_map(_as_numpy_out, out, spec)

    def call(params: Mapping[str, jax.Array], x: jax.Array) -> Any:
        spec = out_spec(params, x)
        x_ndim = x.ndim

        def host(params: Mapping[str, Any], x: Any) -> Any:
            params = {k: host_array(v) for k, v in params.items()}
            return _batched(run, params, host_array(x), spec, x_ndim)

        return jax.pure_callback(host, spec, dict(params), x, vmap_method="expand_dims")

    def grads(params: Mapping[str, jax.Array], x: jax.Array, g: Any) -> tuple[Any, Any]:
        float_keys = [k for k, v in params.items() if jnp.issubdtype(v.dtype, jnp.floating)]
        x_float = jnp.issubdtype(x.dtype, jnp.floating)
        spec = (
            {k: jax.ShapeDtypeStruct(params[k].shape, params[k].dtype) for k in float_keys},
            jax.ShapeDtypeStruct(x.shape, x.dtype) if x_float else None,
        )

        def host_vjp(params: Mapping[str, Any], x: Any, g: Any) -> Any:
            p = {k: _arr.torch_alias(v) for k, v in params.items()}
            xt, gt = _arr.torch_alias(x), jax.tree_util.tree_map(_arr.torch_alias, g)
            rest = {k: v for k, v in p.items() if k not in float_keys}

            def fn(pf: dict[str, torch.Tensor], xx: torch.Tensor) -> Any:
                return forward({**rest, **pf}, xx)

            pf = {k: p[k] for k in float_keys}
            if x_float:
                _, vjp = torch.func.vjp(fn, pf, xt)
                dp, dx = vjp(gt)
            else:
                _, vjp = torch.func.vjp(lambda pf: fn(pf, xt), pf)
                (dp,), dx = vjp(gt), None
            return jax.tree_util.tree_map(_as_numpy_out, (dp, dx), spec)

        dp, dx = jax.pure_callback(host_vjp, spec, dict(params), x, g, vmap_method="sequential")
        full = {k: dp[k] if k in dp else _zero_cotangent(v) for k, v in params.items()}
        return full, dx if x_float else _zero_cotangent(x)

    @jax.custom_vjp
    def f(params: Mapping[str, jax.Array], x: jax.Array) -> Any:
        return call(params, x)

    def f_fwd(params: Mapping[str, jax.Array], x: jax.Array) -> tuple[Any, Any]:
        if framework != "torch":
            raise TypeError(
                f"jax_function: the adapter runs on {framework!r}, which is forward-only: it has "
                "no gradient. Fix: wrap its output in jax.lax.stop_gradient, or use a torch "
                "adapter of the same backbone."
            )
        return call(params, x), (params, x)

    def f_bwd(res: tuple[Any, Any], g: Any) -> tuple[Any, Any]:
        return grads(*res, g)

    f.defvjp(f_fwd, f_bwd)

    def jax_fn(params: Mapping[str, jax.Array], x: jax.Array) -> Any:
        return f(dict(params), x)

    jax_fn.output_specs = output_specs
    return jax_fn


def _torch_host(v: Any) -> torch.Tensor:
    """A callback argument (a JAX CPU array) as a torch tensor over its buffer."""
    if type(v) is _fast.JAX_ARRAY:
        return _fast.torch_from_jax(v)  # ~3 us instead of ~12 us per array: params add up
    return _arr.torch_alias(v)


def _zero_cotangent(v: Any) -> Any:
    return np.zeros(v.shape, dtype=jax.dtypes.float0)


def _batched(
    run: Callable[..., Any],
    params: Mapping[str, Any],
    x: Any,
    spec: Any,
    x_ndim: int,
) -> Any:
    """Run once, folding any vmapped leading axes (``expand_dims``) into the batch axis."""
    extra = x.ndim - x_ndim
    if extra == 0:
        return run(params, x, spec)
    lead = np.broadcast_shapes(x.shape[:extra], *(v.shape[:extra] for v in params.values()))
    params_batched = any(math.prod(v.shape[:extra]) != 1 for v in params.values())
    if not params_batched and x_ndim >= 1:
        p = {k: v.reshape(v.shape[extra:]) for k, v in params.items()}
        xb = _broadcast(x, (*lead, *x.shape[extra:]))
        n = x.shape[extra]
        merged = xb.reshape((-1, *x.shape[extra + 1 :]))
        merged_spec = jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct((math.prod(lead) * n, *s.shape[1:]), s.dtype), spec
        )
        if all(s.ndim >= 1 and s.shape[0] == n for s in jax.tree_util.tree_leaves(spec)):
            out = run(p, merged, merged_spec)
            return jax.tree_util.tree_map(lambda y, s: y.reshape((*lead, *s.shape)), out, spec)
    # Per-element params (vmap over params) or a backbone without a batch axis: a loop.
    outs = []
    for idx in np.ndindex(*lead):

        def pick(v: Any, idx: tuple = idx) -> Any:
            v = _broadcast(v, (*lead, *v.shape[extra:]))
            return v[idx]

        outs.append(run({k: pick(v) for k, v in params.items()}, pick(x), spec))
    return jax.tree_util.tree_map(lambda *ys: np.stack(ys).reshape((*lead, *ys[0].shape)), *outs)


def _broadcast(v: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(v, torch.Tensor):
        return v.broadcast_to(shape)
    return np.broadcast_to(v, shape)

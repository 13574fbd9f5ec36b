"""Backbones callable from JAX: ``jax_function(adapter)`` and ``jax_params(adapter)``.

The adapter is duck-typed: ``adapter.forward(params, x)``, ``adapter.params`` (a dict of
arrays) and ``adapter.framework`` (``"torch"`` or ``"onnx"``). The returned ``f(params, x)``
runs the backbone from inside a JAX computation, on the adapter's device, through a JAX
callback (``jax.pure_callback``, or ``jax.experimental.buffer_callback`` on XLA's own
buffers: see `jax_function` and ``torch_call``), so it works under ``jax.jit``;
``jax.vmap`` makes one batched backbone call (the vmapped axis is folded into the batch
axis, which assumes the backbone treats batch elements independently, as backbones in eval
mode do); ``jax.grad`` is a ``custom_vjp`` backed by ``torch.func.vjp`` (torch adapters
only: the backward re-runs the forward under vjp), batched under ``jax.vmap`` by
``torch.func.vmap``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from interop._src import batching as _bt
from interop._src import dtypes as _dt
from interop._src import torch_call as _tc
from interop._src import transports as _tp
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
    if isinstance(t, torch.Tensor):
        return jax.ShapeDtypeStruct(tuple(t.shape), _dt.jax_dtype(t.dtype))
    return jax.ShapeDtypeStruct(tuple(t.shape), jnp.dtype(_dt.narrow(np.dtype(t.dtype).name)))


def _key(params: Mapping[str, Any], x: Any) -> tuple:
    return (
        tuple((k, tuple(v.shape), str(v.dtype)) for k, v in sorted(params.items())),
        tuple(x.shape),
        str(x.dtype),
    )


def _torch_dtype(dtype: Any) -> torch.dtype:
    return _dt.NAME_TO_TORCH[_dt.numpy_name(dtype)]


def _choose_callback(framework: str, device: torch.device | None, callback: str) -> str:
    if callback not in _tc.CALLBACKS:
        raise ValueError(
            f"jax_function: callback must be one of {_tc.CALLBACKS}, got {callback!r}. Fix: "
            "leave it 'auto' unless measuring the paths against each other."
        )
    if framework != "torch":
        if callback == "buffer":
            raise ValueError(
                f"jax_function: callback='buffer' runs torch on XLA's buffers, but the adapter "
                f"runs on {framework!r}. Fix: leave callback='auto' (or 'host')."
            )
        return "host"
    if callback == "buffer" and _tp.buffer_callback is None:  # pragma: no cover - jax version
        raise ValueError(
            f"jax_function: callback='buffer' needs jax.experimental.buffer_callback (jax >= "
            f"0.7), got jax {jax.__version__}. Fix: upgrade jax, or use callback='host'."
        )
    if callback != "auto":
        return callback
    # buffer when torch and XLA compute on the same kind of device (nothing is moved then);
    # when they differ, the operands cross devices anyway and pure_callback is the simpler path
    cuda = device is not None and device.type == "cuda"
    return "buffer" if _tp.buffer_callback is not None and cuda == _jax_on_gpu() else "host"


def _jax_on_gpu() -> bool:
    return jax.default_backend() in ("gpu", "cuda", "rocm")


def jax_function(
    adapter: Any, *, callback: str = "auto"
) -> Callable[[Mapping[str, jax.Array], jax.Array], Any]:
    """A JAX function ``f(params, x)`` running ``adapter`` (torch or ONNX) on JAX's memory.

    Where the torch call runs: on the adapter's device (where its params live, see
    ``interop._src.torch_call.adapter_device``), through one of two callbacks:

    * ``"host"`` (``jax.pure_callback``): the callback receives host arrays, which torch
      aliases; under ``jax.jit`` on the CPU they are copies XLA makes of its operands (the
      pointers differ), and the outputs are copied back into XLA's buffers. For an adapter
      on a GPU, every call also copies *all params* and ``x`` to the device and the outputs
      back: two host transfers per call (four when JAX computes on a GPU too, as XLA copies
      its operands to the host and the results back, then synchronises its stream).
    * ``"buffer"`` (``jax.experimental.buffer_callback``, jax >= 0.7): the callback receives
      XLA's buffers themselves and writes the outputs into XLA's output buffers. With JAX and
      the adapter on the same GPU nothing crosses the host: torch aliases the buffers over
      DLPack and runs its kernels on XLA's stream, so no synchronisation is needed; the
      one extra cost is a device-to-device copy of the outputs into XLA's buffers.
      Operands on another device are moved to the adapter's (and results back). On the
      CPU it is zero-copy too (tested by pointers) and faster per call than ``"host"``
      (the "buffer vs host callback" row of ``python -m benchmarks --only jax_function``,
      figure in benchmarks/README.md).
    * ``"auto"``: ``"buffer"`` when the adapter and JAX's default backend are on the same
      kind of device (both CPU, or both GPU), so that torch really runs on JAX's memory; else
      ``"host"`` (ONNX adapters: always ``"host"``). ``buffer_callback`` is still marked
      experimental in jax: ``callback="host"`` is the fallback if a jax release breaks it.

    Under ``jax.vmap`` the forward is one batched backbone call (the vmapped axes are folded
    into the batch axis, which assumes the backbone treats batch elements independently, as
    backbones in eval mode do; vmapped params fall back to a loop); the backward is one
    ``torch.func.vmap`` over ``torch.func.vjp``, giving per-example gradients, with a loop
    only for models torch cannot vmap.

    Args:
        adapter: has ``forward(params, x)``, ``params`` and ``framework``.
        callback: ``"auto"``, ``"host"`` or ``"buffer"`` (torch adapters), as above.

    Returns:
        ``f(params, x) -> y`` of JAX arrays, ``params`` as from ``jax_params(adapter)`` and
        ``x`` of shape ``(batch, ...)``; ``y`` has the adapter's output structure, e.g.
        ``(batch, dim)``. Output shapes and dtypes come from evaluating the torch forward on
        fake tensors on the adapter's devices (ONNX: one real run on zeros), once per input
        shape and dtype; the cache is ``f.output_specs``. ``f.callback`` is the path taken.

    Raises:
        TypeError: not an adapter; ``jax.grad`` of an ONNX adapter (forward-only).
        ValueError: an unknown ``callback``, or ``"buffer"`` for an ONNX adapter; torch
            params spread over several devices with no ``info["device"]``. From ``f``: ``x``
            of another rank than the adapter's ``info["input_shape"]``, or an ``x`` the
            backbone's forward fails on (naming ``x`` and its shape).

    Example:
        >>> f = jax.jit(interop.jax_function(backbone))
        >>> feats = f(interop.jax_params(backbone), x)          # (batch, dim)
        >>> g = jax.grad(lambda p, x: f(p, x).sum())(params, x)  # torch adapters
    """
    b = _backbone(_check_adapter(adapter), callback)
    f = _differentiable(b)

    def jax_fn(params: Mapping[str, jax.Array], x: jax.Array) -> Any:
        _check_rank(b.adapter, x)
        return f(dict(params), x)

    jax_fn.output_specs = b.output_specs
    jax_fn.callback = b.path
    return jax_fn


@dataclasses.dataclass(frozen=True)
class _Backbone:
    """What the callbacks of one `jax_function` share: the adapter, where and how it runs,
    and two caches (output specs, and one callback per call signature)."""

    adapter: Any
    device: torch.device | None
    path: str  # "host" or "buffer"
    to_device: Callable[..., Any] | None
    output_specs: dict[tuple, Any] = dataclasses.field(default_factory=dict)
    # one callable per signature: eager calls reuse programs
    callbacks: dict[tuple, Any] = dataclasses.field(default_factory=dict)

    @property
    def torch(self) -> bool:
        return self.adapter.framework == "torch"


def _backbone(adapter: Any, callback: str) -> _Backbone:
    device = _tc.adapter_device(adapter) if adapter.framework == "torch" else None
    path = _choose_callback(adapter.framework, device, callback)
    to_device = _tc.mover(device) if device is not None else None
    return _Backbone(adapter, device, path, to_device)


def _differentiable(b: _Backbone) -> Callable[..., Any]:
    """``f(params, x)``: the forward callback, with a VJP backed by ``torch.func.vjp``."""

    @jax.custom_vjp
    def f(params: Mapping[str, jax.Array], x: jax.Array) -> Any:
        return _call(b, params, x)

    def f_fwd(params: Mapping[str, jax.Array], x: jax.Array) -> tuple[Any, Any]:
        if not b.torch:
            raise TypeError(
                f"jax_function: the adapter runs on {b.adapter.framework!r}, which is "
                "forward-only: it has no gradient. Fix: wrap its output in "
                "jax.lax.stop_gradient, or use a torch adapter of the same backbone."
            )
        return _call(b, params, x), (params, x)

    def f_bwd(res: tuple[Any, Any], g: Any) -> tuple[Any, Any]:
        return _grads(b, *res, g)

    f.defvjp(f_fwd, f_bwd)
    return f


def _out_spec(b: _Backbone, params: Mapping[str, Any], x: Any) -> Any:
    """The output's ``ShapeDtypeStruct`` pytree for these params and ``x``, cached."""
    key = _key(params, x)
    if key not in b.output_specs:
        if b.torch:
            out = _fake_forward(b, params, x)
        else:
            out = b.adapter.forward({}, np.zeros(x.shape, dtype=x.dtype))
        b.output_specs[key] = jax.tree_util.tree_map(_sds, out)
    return b.output_specs[key]


def _fake_forward(b: _Backbone, params: Mapping[str, Any], x: Any) -> Any:
    """The torch forward on fake tensors on the adapter's devices: shapes and dtypes only."""
    with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
        fp, fx = _tc.fake_inputs(b.adapter, params, x, b.device, _torch_dtype)
        try:
            return b.adapter.forward(fp, fx)
        except (ValueError, RuntimeError, IndexError) as err:
            # the first run of the backbone on this shape: say which input failed
            raise ValueError(
                f"jax_function: the backbone's forward fails on x of shape "
                f"{tuple(x.shape)} ({x.dtype}): {err}. Fix: pass x shaped as the "
                "backbone expects, batch first, e.g. (batch, channels, height, width)"
            ) from err


def _run(b: _Backbone, params: Mapping[str, Any], x: Any) -> Any:
    if b.torch:
        return b.adapter.forward(params, x)
    return b.adapter.forward({}, np.ascontiguousarray(x))


def _transport(b: _Backbone, body: Callable[..., Any], spec: Any) -> Any:
    if b.path == "buffer":
        return _tp.buffer(body, spec, move=b.to_device)
    if not b.torch:  # ONNX Runtime takes the host arrays as they are
        return _tp.host(body, spec, view=np.asarray)
    return _tp.host(body, spec, move=b.to_device)


def _call(b: _Backbone, params: Mapping[str, jax.Array], x: jax.Array) -> Any:
    spec = _out_spec(b, params, x)
    key = (_key(params, x), "forward")
    if key not in b.callbacks:
        x_ndim = x.ndim

        def body(params: Mapping[str, Any], x: Any) -> Any:
            with torch.no_grad():
                return _bt.folded_call(lambda p, xx: _run(b, p, xx), params, x, spec, x_ndim)

        b.callbacks[key] = _transport(b, body, spec)
    return b.callbacks[key](dict(params), x)


def _grads(b: _Backbone, params: Mapping[str, jax.Array], x: jax.Array, g: Any) -> tuple:
    """``(dparams, dx)`` through one callback running ``torch.func.vjp``."""
    float_keys = [k for k, v in params.items() if jnp.issubdtype(v.dtype, jnp.floating)]
    x_float = bool(jnp.issubdtype(x.dtype, jnp.floating))
    g_leaves, g_tree = jax.tree_util.tree_flatten(g)
    spec = (
        {k: jax.ShapeDtypeStruct(params[k].shape, params[k].dtype) for k in float_keys},
        jax.ShapeDtypeStruct(x.shape, x.dtype) if x_float else None,
    )
    vjp = _vjp(b.adapter.forward, float_keys, x_float, g_tree, x.ndim)
    key = (_key(params, x), "vjp", str(g_tree), tuple((v.shape, str(v.dtype)) for v in g_leaves))
    if key not in b.callbacks:

        def body(p: Any, x: Any, g: Any) -> Any:
            return _pad_dx(vjp(p, x, g), x_float)

        b.callbacks[key] = _transport(b, body, spec)
    dp, dx = b.callbacks[key](dict(params), x, g_leaves)
    full = {k: dp[k] if k in dp else _zero_cotangent(v) for k, v in params.items()}
    return full, dx if x_float else _zero_cotangent(x)


def _check_rank(adapter: Any, x: Any) -> None:
    """Raise `ValueError` naming ``x`` when its rank differs from the adapter's known input."""
    expected = (getattr(adapter, "info", None) or {}).get("input_shape")
    ndim = getattr(x, "ndim", None)
    if not expected or ndim is None or ndim == len(expected):
        return
    like = "(batch, " + ", ".join(str(d) for d in expected[1:]) + ")"
    fix = "add the batch axis: x[None]" if ndim == len(expected) - 1 else f"reshape x to {like}"
    raise ValueError(
        f"jax_function: x has shape {tuple(x.shape)} (rank {ndim}), but this backbone takes "
        f"rank-{len(expected)} input shaped like {like}. Fix: {fix}."
    )


def _vjp(
    forward: Callable[..., Any], float_keys: list[str], x_float: bool, g_tree: Any, x_ndim: int
) -> Callable[[dict[str, torch.Tensor], torch.Tensor, list[torch.Tensor]], Any]:
    """``vjp(params, x, g_leaves) -> (dparams, dx)`` (``(dparams,)`` for a non-float ``x``),
    per vmapped element when the arguments carry vmapped leading axes."""

    def one(p: dict[str, torch.Tensor], x: torch.Tensor, g: list[torch.Tensor]) -> Any:
        rest = {k: v for k, v in p.items() if k not in float_keys}
        pf = {k: p[k] for k in float_keys}
        gt = jax.tree_util.tree_unflatten(g_tree, g)
        if x_float:
            _, pullback = torch.func.vjp(lambda pf, xx: forward({**rest, **pf}, xx), pf, x)
            return pullback(gt)
        _, pullback = torch.func.vjp(lambda pf: forward({**rest, **pf}, x), pf)
        return pullback(gt)

    def vjp(p: dict[str, torch.Tensor], x: torch.Tensor, g: list[torch.Tensor]) -> Any:
        extra = x.ndim - x_ndim
        return one(p, x, g) if extra == 0 else _bt.batched_vjp(one, p, x, g, extra)

    return vjp


def _pad_dx(grads: tuple, x_float: bool) -> tuple[Any, Any]:
    return (grads[0], grads[1]) if x_float else (grads[0], None)


def _zero_cotangent(v: Any) -> Any:
    return np.zeros(v.shape, dtype=jax.dtypes.float0)

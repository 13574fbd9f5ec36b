"""The ``runtime: jax`` path: a torch backbone lowered into a pure JAX function.

`lower_to_jax` lowers the adapter's own ``forward`` (so the spec's transforms and a source's
custom call, e.g. timm's ``out_indices``, are inside) with `interop.lower`: ``torch.export``
to core ATen, interpreted by a table of JAX functions. The result is an `Adapter` with
``framework="jax"`` whose ``params`` are the torch adapter's tensors as JAX arrays (same keys,
sharing memory on the CPU) and whose ``forward(params, x)`` is pure JAX: ``jit``, ``grad``,
``vmap`` and ``jax.export`` work on it, and a Flax head compiles with it into one program.

The lowered function is cached on disk as a ``jax.export`` artifact (``cache.py``), so a
second build skips ``torch.export``. With a dynamic batch the batched function is exported
with a symbolic batch axis. The first build checks the artifact against the lowering (which
was checked against torch), and whether each output row depends on its input row alone (the
check batch whole against each row alone), recorded as ``independent_rows``. On a cache hit
the artifact serves through ``served.py``: ``jit``, ``grad`` (first order), ``vmap`` and
``jax.export`` work; a vmapped axis is folded into the batch (one call) when the rows are
independent and the params shared, else looped. ``info["cache"]`` tells which it is.

On a GPU (``build(spec, runtime="jax", device="cuda")``) the torch source has already moved
the params there once; the JAX params share that device memory, the module is traced on its own
device, the artifact is exported for that platform (which is part of the cache key), and
``forward`` moves host inputs (NumPy, CPU tensors) to the params' device. The first-build check
runs float32 at full precision on both sides (no TF32 in torch's cuDNN nor in XLA), so it tests
the lowering, not the hardware's rounding; served calls use each framework's default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch.utils import _pytree as tpytree

import interop

from ...adapter import Adapter
from ...devices import jax_device_name
from ...errors import BuildError
from ...precision import parity_tolerance, precision_of
from ..cache_entry import root_source
from ..cache_key import params_digest
from ..inputs import (
    Traceable,
    as_torch_inputs,
    batch_of_two,
    check_inputs,
    default_example,
    restructure,
)
from ..outputs import Structure, flatten, unflatten
from ..parity import parity
from .cache import (
    ARTIFACT_FILE,
    default_jax_cache_dir,
    enable_compilation_cache,
    jax_cache_key,
    load_entry,
    save_entry,
)
from .device import (
    ACCELERATOR_TOL,
    export_platform,
    params_device,
    torch_device,
)
from .first_check import ALTERNATIVES as _ALTERNATIVES
from .first_check import checked as _checked
from .served import Flat, cache_hit, independent_rows
from .train import lower_train


def lower_to_jax(
    adapter: Adapter,
    example_input: Any = None,
    *,
    dynamic_batch: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    atol: float | None = None,
    rtol: float | None = None,
    train: bool = False,
) -> Adapter:
    """Lower a torch-family adapter into a pure JAX ``forward(params, x)``, cached on disk.

    Args:
        adapter: a torch-family `Adapter` (``framework == "torch"``) of an ``nn.Module``, on
            the CPU or a GPU (``build(..., device="cuda")``): the JAX params share its
            tensors' memory there and the lowered function runs there.
            An ONNX adapter (``framework == "onnx"``, an ``OnnxSpec``) is lowered from its file
            instead (``from_onnx.py``: params are the initializers, the first build is
            checked against ONNX Runtime, ``train=True`` is refused).
        example_input: an input as ``adapter`` takes it (one ``(batch, ...)`` array, a tuple
            or a dict); its shapes and dtypes are traced. Default: zeros of
            ``adapter.info["input_shape"]``.
        dynamic_batch: let the batch axis vary (one lowering for every batch size).
        cache_dir: where lowered artifacts are kept; default ``<cache root>/jax`` (see
            ``adapters/_src/runtimes/jax/cache.py``).
        use_cache: read and write that cache. A cache hit serves the artifact: ``jit``,
            ``grad`` (first order), ``vmap`` and ``jax.export`` work on it (under ``vmap`` over
            examples it is one batched call; over params, or for a model whose outputs mix
            examples, a loop). Pass False to always trace the lowering itself (higher-order
            derivatives).
        atol, rtol: the first-build check passes when every output is within
            ``atol + rtol * max|torch output|`` of the torch adapter's, which runs at the
            same precision; None: the precision's (``adapters/_src/precision.py``: 1e-4 each
            at float32, relative bounds of the low dtypes' roundoff below it).
        train: lower the module's train mode (``adapters/_src/runtimes/jax/train.py``):
            ``forward(params, x, *, key=None) -> (y, new_buffers)``, dropout and drop-path
            drawing from the ``jax.random`` key, batch norm on batch statistics with its
            running ones in ``new_buffers`` (under the ``params`` keys). Not cached
            (``cache_dir`` / ``use_cache`` do not apply); the first build checks the step
            against torch's train mode when it is deterministic (``info["train_check"]``).

    Returns:
        An `Adapter` with ``framework="jax"``, the torch adapter's ``spec``, ``module``,
        output structure and ``info`` (``preprocess``, ``input_shape``, ...) plus
        ``runtime="jax"``, ``device`` (the params' JAX device), ``cache`` (``"hit"``,
        ``"miss"``, or ``"off: <why>"`` when the artifact could not be cached, e.g. its VJP
        cannot be serialised or the cache location cannot be written, which is a
        `CacheWarning`), ``cache_key`` and ``jax_path`` (the artifact). ``params`` are the torch
        params as JAX arrays under the same keys; ``forward`` takes JAX (or NumPy / torch)
        inputs and returns JAX arrays.

    Raises:
        TypeError: ``adapter`` is not a torch-family adapter of an ``nn.Module``.
        BuildError: ``runtime``: the module cannot be lowered (every missing op and the
            submodules using it are listed, with the alternatives); ``example_input``: none
            given and the model declares no input shape.
        adapters.ParityError: the lowered function differs from torch beyond tolerance.

    Example:
        >>> backbone = adapters.lower_to_jax(adapters.build("timm/resnet18"))
        >>> y = jax.jit(backbone.forward)(backbone.params, x)
    """
    if isinstance(adapter, Adapter) and adapter.framework == "onnx":
        options = {"dynamic_batch": dynamic_batch, "cache_dir": cache_dir, "train": train}
        return _lower_onnx(adapter, example_input, atol, rtol, use_cache=use_cache, **options)
    atol, rtol = _checked_tolerance(adapter, atol, rtol)
    example = default_example(adapter, example_input, "jax")
    if train:
        return lower_train(
            adapter, example, dynamic_batch=dynamic_batch, atol=atol, rtol=rtol,
            alternatives=_ALTERNATIVES,
        )  # fmt: skip
    kind, names, tensors = as_torch_inputs(example)
    if dynamic_batch:
        tensors = batch_of_two(names, tensors)
    where = torch_device(adapter)
    tensors = [t.to(where) for t in tensors]  # traced where the module is (its params' device)
    params = {k: interop.to_jax(v, downcast=True) for k, v in adapter.params.items()}
    # a module on the CPU exports for the CPU even where JAX's default backend is a GPU
    platform = "cpu" if where.type == "cpu" else export_platform(params_device(params))
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_jax_cache_dir()
    enable_compilation_cache(root.parent if cache_dir is None else root)
    weights = params_digest(adapter.params)
    key = jax_cache_key(adapter, example, dynamic_batch, platform, weights)
    entry = root / key[:32]
    info = {"cache": "miss", "cache_key": key, "jax_path": str(entry / ARTIFACT_FILE)}
    loaded = load_entry(entry, key, weights) if use_cache else None
    if loaded is not None:
        run, structure, info = cache_hit(loaded, platform, info)
        return _wrap(adapter, run, params, structure, kind, names, info)
    flat, structure = _lower(adapter, kind, names, tensors)
    check = tpytree.tree_map_only(
        torch.Tensor, lambda t: t.to(where), check_inputs(restructure(kind, names, tensors))
    )
    wrap = partial(_wrap, adapter, params=params, structure=structure, kind=kind, names=names)
    served = _checked(adapter, wrap, flat, info, check, platform, (atol, rtol))
    info, options = {**info, **served.info}, served.info["xla_options"]
    if not use_cache:
        return served
    exported = _export(flat, params, tensors, dynamic_batch, platform)
    cached = _wrap(adapter, exported.call, params, structure, kind, names, info)
    tol = (atol, rtol) if platform == "cpu" else (max(atol, ACCELERATOR_TOL), max(rtol, ACCELERATOR_TOL))  # fmt: skip
    if not parity(cached, served, check).ok(*tol):
        why = "off: the jax.export artifact does not match the lowering"
        return attrs.evolve(served, info={**served.info, "cache": why})
    rows = dynamic_batch and independent_rows(cached, check, *tol)
    meta = {"key": key, "weights": weights, "structure": structure, "independent_rows": rows}
    meta["parity"], meta["xla_options"] = info["parity"], options
    try:
        why_not = save_entry(entry, exported, meta, root_source(cache_dir))
    except ValueError as err:  # jax.export cannot write the VJP: served, not cached
        reason = str(err).strip().splitlines()[0]
        return attrs.evolve(served, info={**served.info, "cache": f"off: {reason}"})
    if why_not is not None:
        return attrs.evolve(served, info={**served.info, "cache": f"off: {why_not}"})
    return served


def _lower_onnx(
    adapter: Adapter, example: Any, atol: float | None, rtol: float | None, **options: Any
) -> Adapter:
    """An ONNX adapter's lowering (``from_onnx.py``), at its own default tolerance where none
    is given."""
    from .from_onnx import lower_onnx_to_jax

    tolerance = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    return lower_onnx_to_jax(adapter, example, **options, **tolerance)


def _checked_tolerance(adapter: Any, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """The first-build check's ``(atol, rtol)``: the adapter's precision's where not given
    (``adapters/_src/precision.py``), once `_require_torch` has accepted the adapter."""
    _require_torch(adapter)
    default_atol, default_rtol = parity_tolerance(precision_of(adapter.spec))
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol)


def _require_torch(adapter: Any) -> None:
    if not isinstance(adapter, Adapter) or adapter.framework != "torch":
        got = adapter.framework if isinstance(adapter, Adapter) else type(adapter).__name__
        raise TypeError(
            f"lower_to_jax: expected a torch-family adapters.Adapter, got {got!r}. Build the "
            "spec with runtime='torch' first (a Flax adapter is JAX already)."
        )
    if not isinstance(adapter.module, torch.nn.Module):
        raise TypeError(
            "lower_to_jax: expected the adapter's module to be a torch.nn.Module, got "
            f"{type(adapter.module).__name__}; only a module's forward can be lowered."
        )


def _lower(
    adapter: Adapter, kind: str, names: Sequence[str], tensors: list[torch.Tensor]
) -> tuple[Flat, Structure]:
    """The lowered flat function and the output structure (from one torch call)."""
    with torch.no_grad():
        _, _, structure = flatten(
            adapter.forward(adapter.params, restructure(kind, names, tensors))
        )
    try:
        traceable = Traceable(adapter, kind, names)
        # lower restores the mode it found: a new module's default (training) would leave the
        # adapter's own module in training mode (batch norm on batch statistics) after it
        traceable.train(adapter.module.training)
        lowered, _ = interop.lower(traceable, tuple(tensors))
    except interop.LoweringError as err:
        raise BuildError(
            "runtime",
            f"runtime='jax' cannot lower {type(adapter.module).__name__}:\n{err}",
            fix=_ALTERNATIVES,
        ) from err

    def flat(params: Mapping[str, Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
        # the lowered module is Traceable, holding the adapter's module as ``inner``
        return tuple(lowered({f"inner.{k}": v for k, v in params.items()}, tuple(args)))

    # jitted by the caller (xla_options.jit): an eager call (the first-build checks, a user
    # outside jit) would dispatch the graph op by op, slower than compiling it once
    return flat, structure


def _export(
    flat: Flat,
    params: Mapping[str, Any],
    tensors: list[torch.Tensor],
    dynamic_batch: bool,
    platform: str,
) -> jax.export.Exported:
    """``flat`` as a ``jax.export`` artifact for ``platform`` (where the params are, not JAX's
    default backend), its batch symbolic when ``dynamic_batch``."""
    p_spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()}
    dtypes = [interop.to_jax(t).dtype for t in tensors]
    if not dynamic_batch:
        x_spec = tuple(
            jax.ShapeDtypeStruct(t.shape, d) for t, d in zip(tensors, dtypes, strict=True)
        )
        return jax.export.export(jax.jit(flat), platforms=(platform,))(p_spec, x_spec)
    (b,) = jax.export.symbolic_shape("b")
    x_spec = tuple(
        jax.ShapeDtypeStruct((b, *t.shape[1:]), d) for t, d in zip(tensors, dtypes, strict=True)
    )
    return jax.export.export(jax.jit(flat), platforms=(platform,))(p_spec, x_spec)


def _as_jax(a: Any, device: jax.Device | None) -> Any:
    """An input as a JAX array; off the CPU, host arrays move to the params' ``device`` (a
    torch tensor already there is shared, not copied)."""
    on_host = device is None or device.platform == "cpu"
    if isinstance(a, torch.Tensor):
        return interop.to_jax(a) if on_host else interop.to_jax(a, device=device)
    if isinstance(a, np.ndarray):
        return jnp.asarray(a) if on_host else jax.device_put(a, device)
    return a


def _wrap(
    adapter: Adapter,
    run: Flat,
    params: dict[str, Any],
    structure: Structure,
    kind: str,
    names: Sequence[str],
    info: Mapping[str, Any],
) -> Adapter:
    device = params_device(params)

    def forward(params: Mapping[str, Any], x: Any) -> Any:
        if kind == "dict":
            leaves = [x[n] for n in names]
        else:
            leaves = list(x) if kind == "tuple" else [x]
        y = run(dict(params), tuple(_as_jax(a, device) for a in leaves))
        return unflatten(structure, list(y))

    name = None if device is None else jax_device_name(device)
    return Adapter(
        forward=forward,
        params=params,
        spec=adapter.spec,
        framework="jax",
        module=adapter.module,
        info={**dict(adapter.info), **info, "runtime": "jax", "device": name},
    )

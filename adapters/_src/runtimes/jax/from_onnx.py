"""The ``runtime: jax`` path for an ONNX source: the graph lowered into a pure JAX function.

`lower_onnx_to_jax` interprets the ONNX file with `interop.onnx_lowering.lower_onnx` (an op
table over ``jax.numpy`` / ``lax`` sharing the torch lowering's functions where the ops mean the
same thing). The result is an `Adapter` with ``framework="jax"`` whose ``params`` are the
graph's float initializers as JAX arrays keyed by initializer name (sharing memory with the
arrays read from the file on the CPU) and whose ``forward(params, x)`` is pure JAX, the spec's
transforms applied after: ``jit``, ``grad``, ``vmap`` and ``jax.export`` work on it.

The first build checks the lowering against ONNX Runtime (the ONNX adapter itself) on a random
batch and fails with a `ParityError` beyond tolerance. The lowered function is cached on disk as
a ``jax.export`` artifact (``cache.py``'s entries), keyed by the file's sha256, the digest of
every initializer, the spec's transforms, the input signature, the JAX version and the
platform: an entry is trusted for what it records, never for where it lies. A graph whose
inputs all have a free leading axis is exported with a symbolic batch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import jax
import jax.numpy as jnp
import numpy as np

import specs
from interop.onnx_lowering import OnnxLoweringError, lower_onnx
from specs.internal import sha256_file

from ...adapter import Adapter
from ...errors import BuildError, ParityError
from ..cache_entry import root_source
from ..cache_key import hex_key
from ..parity import parity
from .cache import (
    ARTIFACT_FILE,
    JAX_CACHE_FORMAT,
    default_jax_cache_dir,
    enable_compilation_cache,
    load_entry,
    save_entry,
)
from .device import export_platform, params_device
from .served import Flat, independent_rows, served_call

_ALTERNATIVES = (
    "Serve the file with ONNX Runtime (runtime='torch', the ONNX source's own), or call it "
    "from JAX with interop.jax_function(adapter) (a host callback: no gradients, no fusion)"
)
#: the batch of the first-build check when the graph's batch is free
CHECK_BATCH = 2


def lower_onnx_to_jax(
    adapter: Adapter,
    example_input: Any = None,
    *,
    dynamic_batch: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    train: bool = False,
) -> Adapter:
    """Lower an ONNX adapter (``framework == "onnx"``) into a pure JAX ``forward(params, x)``.

    Args, Returns and Raises as `adapters.lower_to_jax` (which calls this for an ONNX adapter),
    except: ``example_input`` (one array, a tuple or a dict by input name) is needed only when a
    graph input has a free axis other than the leading one; ``train=True`` is refused (an ONNX
    graph is one mode, inference); the first-build check compares with ONNX Runtime.
    """
    if train:
        raise BuildError(
            "train",
            "an ONNX graph has one mode (what it was exported in); runtime='jax' lowers it as "
            "it is, for forward(params, x)",
            fix="Build without train=True (jax.grad works on the lowered forward), or lower "
            "the torch source with train=True",
        )
    path = str(adapter.spec.path)
    try:
        forward, params, graph = lower_onnx(path)
    except OnnxLoweringError as err:
        raise BuildError(
            "runtime", f"runtime='jax' cannot lower the ONNX model:\n{err}", fix=_ALTERNATIVES
        ) from err
    names = [v.name for v in graph.inputs]
    dynamic = dynamic_batch and all(
        v.shape and not isinstance(v.shape[0], int) for v in graph.inputs
    )
    example = _example(graph.inputs, example_input, dynamic)
    platform = export_platform(params_device(params))
    weights = _arrays_digest(graph.arrays)
    key = _cache_key(adapter, path, example, dynamic, platform, weights)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_jax_cache_dir()
    enable_compilation_cache(root.parent if cache_dir is None else root)
    entry = root / key[:32]
    info = {"cache": "miss", "cache_key": key, "jax_path": str(entry / ARTIFACT_FILE)}
    wrap = _Wrap(adapter, params, graph, names, len(graph.outputs))
    loaded = load_entry(entry, key, weights) if use_cache else None
    if loaded is not None:
        exported, meta = loaded
        return wrap(
            served_call(exported, meta.get("independent_rows") is True), {**info, "cache": "hit"}
        )

    def flat(p: Mapping[str, Any], xs: tuple[Any, ...]) -> tuple[Any, ...]:
        ys = forward(p, tuple(xs))
        return ys if isinstance(ys, tuple) else (ys,)

    flat = jax.jit(flat)
    served = wrap(flat, info)
    check = _check_input(example, names, dynamic)
    _check_parity(served, adapter, check, atol, rtol)
    if not use_cache:
        return served
    return _cache(
        served,
        flat,
        wrap,
        params,
        example,
        dynamic,
        platform,
        check,
        (atol, rtol),
        entry,
        key,
        weights,
        cache_dir,
    )


def _cache_key(
    adapter: Adapter, path: str, example: list, dynamic: bool, platform: str, weights: str
) -> str:
    """The entry's key: the file's bytes, the initializers' digest, the transforms, the input
    signature (batch left out when free), the platform and the artifact format."""
    payload = {
        "source": "onnx",
        "file": sha256_file(Path(path)),
        "transforms": specs.unstructure(adapter.spec).get("transforms", []),
        "inputs": [
            [list(map(str, a.shape[1:] if dynamic else a.shape)), str(a.dtype)] for a in example
        ],
        "dynamic_batch": dynamic,
        "jax": jax.__version__,
        "format": JAX_CACHE_FORMAT,
        "platform": platform,
    }
    return hex_key({**payload, "weights": weights})


def _example(inputs: Sequence[Any], example_input: Any, dynamic: bool) -> list[np.ndarray]:
    """One array per graph input: the caller's, or zeros of the declared shape (a free leading
    axis taken as `CHECK_BATCH`).

    Raises:
        BuildError: no example and an input has another free axis.
    """
    if example_input is not None:
        if isinstance(example_input, Mapping):
            leaves = [example_input[v.name] for v in inputs]
        else:
            leaves = (
                list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
            )
        return [np.asarray(interop_numpy(a)) for a in leaves]
    found = []
    for v in inputs:
        shape = list(v.shape or ())
        if shape and not isinstance(shape[0], int):
            shape[0] = CHECK_BATCH
        if not all(isinstance(d, int) for d in shape):
            raise BuildError(
                "example_input",
                f"the ONNX input {v.name!r} has free axes {v.shape}, so runtime='jax' needs an "
                "example input to trace",
                fix="Pass example_input=np.zeros((1, 3, 224, 224), np.float32) (your input shape)",
            )
        found.append(np.zeros(shape, v.dtype))
    return found


def interop_numpy(a: Any) -> Any:
    """Any array as NumPy (torch tensors and JAX arrays included)."""
    import interop

    return interop.to_numpy(a)


def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every initializer's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype}:{a.shape};".encode())
        h.update(a.tobytes() if a.dtype == object else memoryview(a).cast("B"))
    return h.hexdigest()


def _check_input(example: list[np.ndarray], names: list[str], dynamic: bool) -> Any:
    """A random batch shaped like the example (float inputs drawn, others as given)."""
    rng = np.random.default_rng(0)
    leaves = []
    for a in example:
        shape = (CHECK_BATCH, *a.shape[1:]) if dynamic else a.shape
        if a.dtype.kind == "f":
            leaves.append(rng.standard_normal(shape).astype(a.dtype))
        else:
            leaves.append(np.broadcast_to(a[:1] if dynamic else a, shape).copy())
    return leaves[0] if len(leaves) == 1 else tuple(leaves)


def _check_parity(served: Adapter, adapter: Adapter, check: Any, atol: float, rtol: float) -> None:
    report = parity(served, adapter, check)
    if not report.ok(atol, rtol):
        raise ParityError(
            f"runtime='jax': the lowered ONNX model {adapter.spec.path!r} does not match ONNX "
            f"Runtime within atol={atol}, rtol={rtol}: {report}. Nothing was cached. Fix: "
            f"{_ALTERNATIVES}; and report the model (a lowering bug)."
        )


@attrs.frozen
class _Wrap:
    """Makes the JAX adapter around a flat function ``(params, leaves) -> output leaves``."""

    adapter: Adapter
    params: dict[str, Any]
    graph: Any
    names: list[str]
    n_outputs: int

    def __call__(self, run: Flat, info: Mapping[str, Any]) -> Adapter:
        names, n_outputs = self.names, self.n_outputs
        post = None
        if self.adapter.spec.transforms:
            from ...transforms.of_spec import from_specs

            post = from_specs(self.adapter.spec.transforms)

        def forward(params: Mapping[str, Any], x: Any) -> Any:
            if isinstance(x, Mapping):
                leaves = [x[n] for n in names]
            else:
                leaves = list(x) if isinstance(x, (tuple, list)) else [x]
            ys = run(dict(params), tuple(_as_jax(a) for a in leaves))
            y = ys[0] if n_outputs == 1 else tuple(ys)
            return y if post is None else post(y)

        return Adapter(
            forward=forward,
            params=self.params,
            spec=self.adapter.spec,
            framework="jax",
            module=self.graph,
            info={**dict(self.adapter.info), **info, "runtime": "jax", "device": "cpu"},
        )


def _as_jax(a: Any) -> Any:
    if isinstance(a, (np.ndarray, jax.Array)) or hasattr(a, "aval"):
        return jnp.asarray(a)
    return jnp.asarray(interop_numpy(a))


def _export(
    flat: Flat, params: Mapping[str, Any], example: list[np.ndarray], dynamic: bool, platform: str
) -> jax.export.Exported:
    """``flat`` as a ``jax.export`` artifact, its batch symbolic when ``dynamic``."""
    p_spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()}
    dtypes = [jax.dtypes.canonicalize_dtype(a.dtype) for a in example]
    if dynamic:
        (b,) = jax.export.symbolic_shape("b")
        shapes = [(b, *a.shape[1:]) for a in example]
    else:
        shapes = [a.shape for a in example]
    x_spec = tuple(jax.ShapeDtypeStruct(s, d) for s, d in zip(shapes, dtypes, strict=True))
    return jax.export.export(flat, platforms=(platform,))(p_spec, x_spec)


def _cache(
    served,
    flat,
    wrap,
    params,
    example,
    dynamic,
    platform,
    check,
    tol,
    entry,
    key,
    weights,
    cache_dir,
) -> Adapter:
    """Export, check the artifact against the lowering, and write the entry; ``served`` back
    (its ``info["cache"]`` says why when the entry could not be written)."""

    def off(why: str) -> Adapter:
        return attrs.evolve(served, info={**served.info, "cache": f"off: {why}"})

    try:
        exported = _export(flat, params, example, dynamic, platform)
    except Exception as err:
        return off(f"jax.export failed ({type(err).__name__}: {str(err).splitlines()[0]})")
    cached = wrap(exported.call, served.info)
    if not parity(cached, served, check).ok(*tol):
        return off("the jax.export artifact does not match the lowering")
    rows = dynamic and independent_rows(cached, check, *tol)
    meta = {"key": key, "weights": weights, "structure": None, "independent_rows": rows}
    try:
        why_not = save_entry(entry, exported, meta, root_source(cache_dir))
    except ValueError as err:  # jax.export cannot write the VJP: served, not cached
        return off(str(err).strip().splitlines()[0])
    return served if why_not is None else off(why_not)

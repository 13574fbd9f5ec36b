"""The ``runtime: onnxruntime`` fast path: a torch backbone exported once, served by ORT.

``serve_with_onnxruntime(adapter, example_input)`` exports the adapter to a cache directory
under a key that hashes everything the file depends on (the spec record, the module's
architecture, a digest of every parameter's bytes, the example input's signature, the torch /
onnxruntime versions), checks the export against the torch adapter on random inputs of the
example's shape (parity, first build only) and serves it through `build_onnx`. A second
build with the same key loads the cached file without exporting again.

Keying on the weights (not just the spec) is what keeps a random-init spec
(``pretrained: false``) or an edited checkpoint from being served a stale model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import onnxruntime as ort
import torch

import interop
import specs

from ..adapter import Adapter
from ..errors import BuildError
from ..sources.onnx_serve import build_onnx
from .onnx_export import export_adapter, staged_write, unflatten
from .parity import parity

#: bumped whenever the cached layout or export settings change (2: attention fused)
CACHE_FORMAT = 2
CACHE_ENV = "FM_ADAPTERS_CACHE"
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
#: ONNX Runtime session config for served backbones. Spinning off: ORT's intra-op threads
#: otherwise busy-wait between kernels, which on a shared CPU (data loaders, other jobs)
#: takes time from whoever holds the core. The other session options stay at ORT's defaults,
#: measured no better (figures in benchmarks/README.md, "Figures behind design choices").
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}


class ParityError(RuntimeError):
    """The ONNX export does not reproduce the torch backbone within tolerance."""


def default_cache_dir() -> Path:
    """``$FM_ADAPTERS_CACHE/onnx``, else ``~/.cache/fm-adapters/onnx``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fm-adapters"
    return base / "onnx"


def _canonical(value: Any) -> Any:
    """A JSON-able, order-independent rendering of a spec (attrs records, mappings, ...)."""
    if attrs.has(type(value)):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return {"__type__": f"{type(value).__module__}.{type(value).__qualname__}", **fields}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def params_digest(params: Mapping[str, Any]) -> str:
    """sha256 over every parameter's name, dtype, shape and bytes (CPU copies if needed)."""
    h = hashlib.sha256()
    for name in sorted(params):
        t = params[name]
        if not isinstance(t, torch.Tensor):
            h.update(f"{name}={t!r};".encode())
            continue
        t = t.detach()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            flat = t.contiguous().reshape(-1)
            data = flat.view(torch.uint8) if flat.dtype != torch.bool else flat.to(torch.uint8)
            h.update(memoryview(data.cpu().numpy()))
    return h.hexdigest()


def _input_signature(example_input: Any) -> Any:
    def sig(a: Any) -> list[Any]:
        return [str(getattr(a, "dtype", type(a).__name__)), list(a.shape)[1:]]

    if isinstance(example_input, Mapping):
        return {str(k): sig(v) for k, v in example_input.items()}
    if isinstance(example_input, (list, tuple)):
        return [sig(v) for v in example_input]
    return sig(example_input)


def cache_key(adapter: Adapter, example_input: Any, dynamic_batch: bool = True) -> str:
    """The hex key a fast-path export is cached under (see the module docstring)."""
    payload = {
        "format": CACHE_FORMAT,
        "spec": _canonical(adapter.spec),
        "module": repr(adapter.module),
        "params": params_digest(adapter.params),
        "input": _input_signature(example_input),
        "dynamic_batch": dynamic_batch,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _check_inputs(example_input: Any) -> Any:
    """Random inputs shaped like the example (a zero example would hide most errors)."""
    gen = torch.Generator().manual_seed(0)

    def one(a: Any) -> Any:
        t = interop.to_torch(a, copy=True)
        if t.is_floating_point():
            batch = max(int(t.shape[0]), 2) if t.ndim else None
            shape = (batch, *t.shape[1:]) if batch else ()
            return torch.randn(shape, generator=gen, dtype=t.dtype)
        return t

    if isinstance(example_input, Mapping):
        return {k: one(v) for k, v in example_input.items()}
    if isinstance(example_input, (list, tuple)):
        return tuple(one(v) for v in example_input)
    return one(example_input)


def fuse_attention(path: str | os.PathLike[str]) -> dict[str, int]:
    """Rewrite an exported model in place so ONNX Runtime runs attention as one kernel.

    The dynamo exporter writes ``scaled_dot_product_attention`` as MatMul / Softmax / MatMul
    with per-head Transposes around it; onnxscript's ORT fusions turn it into
    ``com.microsoft.MultiHeadAttention`` (shapes simplified first, so the pattern matches
    under a dynamic batch). Models without attention are left untouched.

    Why these passes and not others: measured, see benchmarks/README.md ("Figures behind
    design choices").

    Args:
        path: an ``.onnx`` file, rewritten atomically when a fusion applies.

    Returns:
        ``{"sdpa": n, "multi_head_attention": n}``: how many attention blocks were fused.
    """
    import onnx_ir as ir  # lazy: onnxscript's rewriter is only needed on a cache miss
    from onnxscript.optimizer import optimize
    from onnxscript.rewriter.ort_fusions import shape_optimization
    from onnxscript.rewriter.ort_fusions.sdpa import fuse_sdpa
    from onnxscript.rewriter.ort_fusions.sdpa_via_mha import replace_sdpa_by_mha

    path = Path(path)
    model = ir.load(path)
    ir.passes.common.ShapeInferencePass()(model)
    optimize(model)
    shape_optimization.rules.apply_to_model(model)
    optimize(model)
    counts = {"sdpa": fuse_sdpa(model, apply_shape_inference=True), "multi_head_attention": 0}
    if counts["sdpa"]:
        counts["multi_head_attention"] = replace_sdpa_by_mha(model)
    if not counts["multi_head_attention"]:
        return counts
    optimize(model)  # inlines any SDPA function left unfused
    external = (path.parent / f"{path.name}.data").is_file()  # as export_adapter writes it
    with staged_write(path) as staged:
        ir.save(model, staged, external_data=f"{path.name}.data" if external else None)
    return counts


def _write_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the entry from other users of the cache
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def serve_with_onnxruntime(
    adapter: Adapter,
    example_input: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    intra_op_num_threads: int | None = None,
    graph_optimization_level: str = "all",
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> Adapter:
    """Serve a torch-family adapter through ONNX Runtime, exporting it once to a cache.

    Args:
        adapter: a torch-family `Adapter` (``framework == "torch"``).
        example_input: an input as ``adapter`` takes it (one ``(batch, ...)`` array, a tuple
            or a dict); its shapes and dtypes are traced, batch left dynamic.
        cache_dir: where exports are kept; default `default_cache_dir`.
        intra_op_num_threads: ONNX Runtime threads; default: one per CPU core.
        graph_optimization_level: as `specs.OnnxSpec`.
        atol, rtol: the first-build parity check passes when every output is within
            ``atol + rtol * max|torch output|`` of the torch adapter's.

    Returns:
        An `Adapter` with the torch adapter's ``spec`` and output structure, ``params`` empty,
        ``framework="onnx"`` and ``module`` the ONNX Runtime session. ``info`` adds
        ``runtime``, ``onnx_path``, ``cache`` (``"hit"`` or ``"miss"``), ``cache_key`` and
        ``parity`` (the first build's `ParityReport` as a dict).

    Raises:
        TypeError: ``adapter`` is not torch-family.
        ParityError: the export differs from torch beyond tolerance (nothing is cached).
        BuildError: the export failed.
    """
    if not isinstance(adapter, Adapter) or adapter.framework != "torch":
        got = adapter.framework if isinstance(adapter, Adapter) else type(adapter).__name__
        raise TypeError(
            f"serve_with_onnxruntime: expected a torch-family adapters.Adapter, got {got!r}. "
            "Build the spec with runtime='torch' first, or use an OnnxSpec directly."
        )
    key = cache_key(adapter, example_input)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / key[:32]
    model_path, meta_path = entry / MODEL_FILE, entry / META_FILE
    onnx_spec = specs.OnnxSpec(
        path=str(model_path),
        intra_op_num_threads=intra_op_num_threads or os.cpu_count() or None,
        graph_optimization_level=graph_optimization_level,
    )
    if meta_path.is_file() and model_path.is_file():
        meta = json.loads(meta_path.read_text())
        served = build_onnx(onnx_spec, config=SESSION_CONFIG)
        cache = "hit"
    else:
        entry.mkdir(parents=True, exist_ok=True)
        try:
            exported = export_adapter(adapter, model_path, example_input)
            fusions = fuse_attention(model_path)
            served = build_onnx(onnx_spec, config=SESSION_CONFIG)
            report = parity(served, adapter, [_check_inputs(example_input), example_input])
            if not report.ok(atol, rtol):
                raise ParityError(
                    f"serve_with_onnxruntime: the ONNX export of {type(adapter.spec).__name__} "
                    f"does not match torch within atol={atol}, rtol={rtol}: {report}. Nothing "
                    "was cached. Fix: serve it with runtime='torch', or loosen atol/rtol if "
                    "the difference is acceptable."
                )
        except BaseException:
            shutil.rmtree(entry, ignore_errors=True)
            raise
        meta = {
            "key": key,
            "structure": exported.structure,
            "input_names": list(exported.input_names),
            "output_names": list(exported.output_names),
            "parity": attrs.asdict(report),
            "fusions": fusions,
        }
        _write_json(meta_path, meta)  # last: its presence marks a complete entry
        meta = json.loads(json.dumps(meta))  # the same plain lists and dicts as a cache hit
        cache = "miss"
    return _wrap(adapter, served, meta, cache)


def _wrap(adapter: Adapter, served: Adapter, meta: Mapping[str, Any], cache: str) -> Adapter:
    structure = meta["structure"]
    run = served.forward

    def forward(params: Mapping[str, Any], x: Any) -> Any:
        if params:
            raise ValueError(
                "forward: a backbone served by ONNX Runtime has its weights baked into the "
                f"graph, so params must be empty; got keys {list(params)[:5]}. Fix: call "
                "adapter(x), or build with runtime='torch' to pass your own params."
            )
        y = run({}, x)
        return unflatten(structure, y if isinstance(y, tuple) else (y,))

    if not isinstance(structure, (dict, type(None))):
        raise BuildError("cache", f"corrupt fast-path metadata {structure!r}")
    return Adapter(
        forward=forward,
        params={},
        spec=adapter.spec,
        framework="onnx",
        module=served.module,
        info={
            **dict(adapter.info),
            **dict(served.info),
            "runtime": "onnxruntime",
            "onnx_path": served.spec.path,
            "cache": cache,
            "cache_key": meta["key"],
            "parity": meta["parity"],
            "fusions": meta["fusions"],
        },
    )

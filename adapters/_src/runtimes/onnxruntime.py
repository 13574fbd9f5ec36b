"""The ``runtime: onnxruntime`` fast path: a torch backbone exported once, served by ORT.

``serve_with_onnxruntime(adapter, example_input)`` exports the adapter to a cache directory
under a key that hashes everything the file depends on (the spec record, the module's
architecture, a digest of every parameter's bytes, the example input's signature, the torch /
onnxruntime versions), checks the export against the torch adapter on random inputs of the
example's shape (parity, first build only) and serves it through `build_onnx`. A second
build with the same key loads the cached file without exporting again, after checking the
model files against the sha256 recorded beside them: a corrupt entry is rebuilt, with a
`CacheWarning` naming it.

Keying on the weights (not just the spec) is what keeps a random-init spec
(``pretrained: false``) or an edited checkpoint from being served a stale model.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

import interop
import specs
from specs._src.atomic import atomic_write

from ..adapter import Adapter
from ..errors import BuildError
from ..sources.onnx_serve import build_onnx
from .onnx_export import export_adapter
from .ort_cache import (
    CACHE_ENV as CACHE_ENV,
)
from .ort_cache import (
    CACHE_FORMAT as CACHE_FORMAT,
)
from .ort_cache import (
    META_FILE,
    MODEL_FILE,
    _digests,
    _load_entry,
    _write_json,
    cache_key,
    default_cache_dir,
)
from .ort_cache import (
    CacheWarning as CacheWarning,
)
from .ort_cache import (
    params_digest as params_digest,
)
from .outputs import unflatten
from .parity import parity

#: ONNX Runtime session config for served backbones. Spinning off: ORT's intra-op threads
#: otherwise busy-wait between kernels, which on a shared CPU (data loaders, other jobs)
#: takes time from whoever holds the core; on a loaded 2-core machine (ViT-S/16 batch 16,
#: interleaved with torch eager) it lowered the CPU time per batch and did not slow the wall
#: time. Left at ORT's defaults, as measured no better the same way: inter-op threads /
#: sequential execution, denormals as zero (random or trained fp32 weights hold no
#: denormals), memory pattern and CPU arena (turning both off was slower). These were one-off
#: comparisons; the fast path's committed figure is the `onnx` suite's "fast path" row
#: (``python -m benchmarks --only onnx``, see benchmarks/README.md).
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}


class ParityError(RuntimeError):
    """The ONNX export does not reproduce the torch backbone within tolerance."""


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

    Why: on ViT-S/16 (ORT profiler, one thread) the unfused MatMul / Softmax / MatMul with
    per-head Transposes took more kernel time than the fused MultiHeadAttention, and the
    exported file ran faster after this rewrite than before it, timed interleaved with torch
    eager on a shared 2-core machine (a one-off comparison; the committed figure for the fast
    path is the `onnx` suite's "fast path" row, ``python -m benchmarks --only onnx``).
    Tried and left out, as they measured slower or no better the same way:

    * the rest of ``optimize_for_ort``: its SkipLayerNormalization costs more than the
      LayerNormalization + Add it replaces here, so the full pipeline is slower;
    * the TorchScript exporter + ``onnxruntime.transformers`` ``model_type="vit"``: fuses no
      Attention on timm's graph either, only the same slow SkipLayerNormalization, and the
      exporter is deprecated;
    * saving ORT's own optimised graph into the cache (``optimized_model_filepath``): later
      session creation barely faster, and ORT warns that a level-"all" graph is tied to the
      machine it was optimised on.

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
    with atomic_write(path) as staged:
        ir.save(model, staged, external_data=f"{path.name}.data" if external else None)
    return counts


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
        A cached entry whose files no longer match their recorded sha256 is rebuilt, with a
        `CacheWarning` naming the entry.

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
    meta = _load_entry(entry)
    if meta is not None:
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
            "files": _digests(entry),
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

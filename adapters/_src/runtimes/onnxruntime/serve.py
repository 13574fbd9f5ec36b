"""The ``runtime: onnxruntime`` fast path: a torch backbone exported once, served by ORT.

``serve_with_onnxruntime(adapter, example_input)`` exports the adapter to a cache directory
under a key that hashes everything the file depends on (the spec record, the module's
architecture, a digest of every parameter's bytes, the example input's signature, the torch /
onnxruntime versions), checks the export against the torch adapter on random inputs of the
example's shape (parity, first build only) and serves it through `build_onnx`. A second
build with the same key loads the cached file without exporting again, after checking the
entry's recorded key, weights digest and model files' sha256 (``cache_entry.py``): an entry
that is corrupt or another model's is rebuilt, with a `CacheWarning` naming it. An entry is
exported in a private directory and published atomically, so concurrent builds of it all
succeed; where the cache cannot be written the export goes to a temporary directory.

Keying on the weights (not just the spec) is what keeps a random-init spec
(``pretrained: false``) or an edited checkpoint from being served a stale model.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

import interop
import specs
from specs.internal import atomic_write

from ..adapter import Adapter
from ..errors import BuildError
from ..sources.onnx_serve import build_onnx
from .cache_entry import load, publish, root_source, staging
from .onnx_export import export_adapter
from .ort_cache import (
    CACHE_ENV as CACHE_ENV,
)
from .ort_cache import (
    CACHE_FORMAT as CACHE_FORMAT,
)
from .ort_cache import (
    MODEL_FILE,
    WHAT,
    cache_key,
    default_cache_dir,
    params_digest,
)
from .ort_cache import (
    CacheWarning as CacheWarning,
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
        ``runtime``, ``onnx_path``, ``cache`` (``"hit"``, ``"miss"``, or ``"off: <why>"`` when
        the cache cannot be written: ``onnx_path`` is then a temporary file removed with the
        session), ``cache_key`` and ``parity`` (the first build's `ParityReport` as a dict).
        A cached entry whose recorded key or weights digest is not this build's, or whose
        files no longer match their recorded sha256, is rebuilt, with a `CacheWarning` naming
        the entry; an unusable cache location is a `CacheWarning` naming where it came from.

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
    weights = params_digest(adapter.params)
    key = cache_key(adapter, example_input, weights=weights)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / key[:32]
    session = functools.partial(
        _session,
        intra_op_num_threads=intra_op_num_threads,
        graph_optimization_level=graph_optimization_level,
    )
    build = functools.partial(_export_checked, adapter, example_input, session, atol, rtol)
    meta = load(entry, key, weights, WHAT)
    if meta is not None:
        return _wrap(adapter, session(entry), meta, "hit", entry)
    with staging(entry, root_source(cache_dir), WHAT) as work:
        if work is None:
            return _uncached(adapter, build, key, "off: the cache location cannot be used")
        served, meta = build(work)
        published = publish(work, entry, {**meta, "key": key, "weights": weights}, WHAT)
        if published is None:  # every try found an unusable entry in the way
            kept = Path(tempfile.mkdtemp(prefix="fm-adapters-onnx-"))
            shutil.copytree(work, kept, dirs_exist_ok=True)
            return _keep(
                adapter, served, {**meta, "key": key}, "off: an unusable entry is in the way", kept
            )
        meta, ours = published
        # a concurrent build published first: serve its files (checked), ours are removed
        return _wrap(adapter, served if ours else session(entry), meta, "miss", entry)


def _session(
    directory: Path, intra_op_num_threads: int | None, graph_optimization_level: str
) -> Adapter:
    """The ONNX Runtime adapter of ``directory``'s model file."""
    onnx_spec = specs.OnnxSpec(
        path=str(directory / MODEL_FILE),
        intra_op_num_threads=intra_op_num_threads or os.cpu_count() or None,
        graph_optimization_level=graph_optimization_level,
    )
    return build_onnx(onnx_spec, config=SESSION_CONFIG)


def _export_checked(
    adapter: Adapter,
    example_input: Any,
    session: Callable[[Path], Adapter],
    atol: float,
    rtol: float,
    directory: Path,
) -> tuple[Adapter, dict[str, Any]]:
    """Export ``adapter`` into ``directory``, fuse attention, check parity against torch.

    Returns:
        The served adapter and the entry's meta (without its key, weights and files).

    Raises:
        ParityError: the export differs from torch beyond tolerance.
    """
    model_path = directory / MODEL_FILE
    exported = export_adapter(adapter, model_path, example_input)
    fusions = fuse_attention(model_path)
    served = session(directory)
    report = parity(served, adapter, [_check_inputs(example_input), example_input])
    if not report.ok(atol, rtol):
        raise ParityError(
            f"serve_with_onnxruntime: the ONNX export of {type(adapter.spec).__name__} "
            f"does not match torch within atol={atol}, rtol={rtol}: {report}. Nothing "
            "was cached. Fix: serve it with runtime='torch', or loosen atol/rtol if "
            "the difference is acceptable."
        )
    meta = {
        "structure": exported.structure,
        "input_names": list(exported.input_names),
        "output_names": list(exported.output_names),
        "parity": attrs.asdict(report),
        "fusions": fusions,
    }
    return served, meta


def _uncached(
    adapter: Adapter, build: Callable[[Path], tuple[Adapter, dict]], key: str, why: str
) -> Adapter:
    """Export into a temporary directory (not the cache), kept as long as the session."""
    directory = Path(tempfile.mkdtemp(prefix="fm-adapters-onnx-"))
    try:
        served, meta = build(directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return _keep(adapter, served, {**meta, "key": key}, why, directory)


def _keep(
    adapter: Adapter, served: Adapter, meta: Mapping[str, Any], why: str, directory: Path
) -> Adapter:
    """Serve a build that is not cached from ``directory``, removed when the session is."""
    weakref.finalize(served.module, shutil.rmtree, str(directory), True)
    return _wrap(adapter, served, meta, why, directory)


def _wrap(
    adapter: Adapter,
    served: Adapter,
    meta: Mapping[str, Any],
    cache: str,
    directory: Path,
) -> Adapter:
    """The served adapter with the torch adapter's spec, output structure and info; its
    ``onnx_path`` is ``directory``'s model file."""
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
            "onnx_path": str(directory / MODEL_FILE),
            "cache": cache,
            "cache_key": meta["key"],
            "parity": meta["parity"],
            "fusions": meta["fusions"],
        },
    )

"""`serve_with_onnxruntime`: a torch backbone exported once to ONNX, cached, served by ORT.

The export is cached under `cache_key` (``cache.py``: everything the file depends on, the
weights included), checked against the torch adapter on random inputs of the example's shape
(parity, first build only) and served through the ONNX source's `build_onnx`. A second build
with the same key loads the cached file without exporting again, after checking the entry's
recorded key, weights digest and model files' sha256 (``cache_entry.py``): an entry that is
corrupt or another model's is rebuilt, with a `CacheWarning` naming it. An entry is exported in
a private directory and published atomically, so concurrent builds of it all succeed; where
the cache cannot be written the export goes to a temporary directory.
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

import specs

from ...adapter import Adapter
from ...errors import BuildError, ParityError
from ...sources.onnx.serve import build_onnx
from ..cache_entry import load, publish, root_source, staging
from ..cache_key import params_digest
from ..inputs import check_inputs
from ..outputs import unflatten
from ..parity import parity
from .cache import MODEL_FILE, WHAT, cache_key, default_cache_dir
from .export import export_adapter
from .fusion import fuse_attention

#: ONNX Runtime session config for served backbones. Spinning off: ORT's intra-op threads
#: otherwise busy-wait between kernels, taking time from whoever else holds the core (data
#: loaders, other jobs). Why the rest stays at ORT's defaults: docs/design/runtimes.md.
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}


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
    report = parity(served, adapter, [check_inputs(example_input), example_input])
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

"""ONNX Runtime: our bound path vs eva's host round trip, and the fast path vs torch eager.

Cases, all on the CPU, interleaved (``benchmarks._timing``):

- ``per call``: the same ONNX session called the eva way (``x.cpu().numpy()`` ->
  ``session.run`` -> ``torch.from_numpy``, first input and output only) vs our adapter
  (inputs bound in place through DLPack and IO binding, outputs shared back as torch), for a
  tiny Linear and a small CNN (where per-call overhead shows) and a ViT-S/16 (where
  compute dominates). A single CPU torch tensor takes ``build_onnx``'s direct path; the
  goal for the Linear is ratio <= 1 (at least as fast as eva's ``session.run``).
  On the CPU eva's round trip copies nothing either (``.cpu()`` is a no-op, ``.numpy()`` a
  view), so this measures the binding's per-call cost; the copies it saves are on CUDA;
- ``fast path``: ``serve_with_onnxruntime`` (exported once, attention fused into ORT's
  MultiHeadAttention, ORT with all graph optimisations, one intra-op thread per core,
  spinning off) vs the torch adapter in eager mode, ViT-S/16 at batch 16,
  ``pretrained=False``; outputs checked within 1e-4 first. The goal is ratio <= 1/1.3.

Run: ``python -m benchmarks.onnx_bench [--full]``. Quick mode times fewer repeats; the ViT-S
export is cached (`default_cache_dir`), so only the first run pays it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._timing import interleaved, ratio_row

SUITE = "onnx"
ATOL = 1e-4
VIT = "vit_small_patch16_224"


def _cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, stride=2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )


def _eva_style(session: Any) -> Any:
    """kaiko-ai/eva's ``ONNXModel.forward``: a host round trip through NumPy."""
    name = session.get_inputs()[0].name

    def forward(x: torch.Tensor) -> torch.Tensor:
        outputs = session.run(None, {name: x.detach().cpu().numpy()})
        return torch.from_numpy(outputs[0]).to(x.device)

    return forward


def _per_call(label: str, ours: Any, reference: Any, x: torch.Tensor, quick: bool) -> dict:
    """Our adapter vs eva's round trip on the same ONNX Runtime session."""
    eva = _eva_style(ours.module)
    with torch.no_grad():
        want = reference(x).numpy()
    for fn in (ours, eva):
        np.testing.assert_allclose(fn(x).numpy(), want, atol=ATOL, rtol=0)
    small = x.numel() < 100_000
    timings = interleaved(
        {"bound (ours)": lambda: ours(x), "eva round trip": lambda: eva(x)},
        repeats=(7 if small else 5) if quick else 21,
        number=200 if small else 1,
        warmup=1,
    )
    return ratio_row(f"per call, {label}", timings, "bound (ours)", "eva round trip", suite=SUITE)


def _fast_path(quick: bool, cache_dir: Path) -> tuple[dict, Any, Any]:
    """Fast path vs torch eager, ViT-S/16 batch 16; also returns both adapters."""
    import adapters
    import specs
    from adapters._src.runtimes.onnxruntime.serve import serve_with_onnxruntime

    torch.manual_seed(0)  # the cache key includes the weights: a fixed seed reuses the export
    backbone = adapters.build(
        specs.TimmSpec(VIT, pretrained=False, model_kwargs={"num_classes": 0})
    )
    x = torch.randn(16, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    served = serve_with_onnxruntime(
        backbone,
        x[:2],
        cache_dir,
        intra_op_num_threads=os.cpu_count(),
        graph_optimization_level="all",
    )
    with torch.no_grad():
        want = backbone(x)
    max_abs = float((served(x) - want).abs().max())

    def eager() -> Any:
        with torch.no_grad():
            return backbone(x)

    timings = interleaved(
        {"onnxruntime fast path": lambda: served(x), "torch eager": eager},
        repeats=3 if quick else 9,
        warmup=0 if quick else 1,  # the parity check above already ran both once
    )
    ratio = timings["onnxruntime fast path"]["median_s"] / timings["torch eager"]["median_s"]
    row = ratio_row(
        "fast path, ViT-S/16 batch 16",
        timings,
        "onnxruntime fast path",
        "torch eager",
        suite=SUITE,
        speedup=1.0 / ratio,
        goal_speedup=1.3,
        max_abs_diff=max_abs,
        within_atol=max_abs <= ATOL,
        cache=served.info["cache"],
        fusions=served.info["fusions"],
    )
    return row, served, backbone


def run(quick: bool = True) -> Iterator[dict[str, Any]]:
    """Rows ``ours / baseline`` (below 1 is faster)."""
    from adapters._src.runtimes.onnxruntime.cache import default_cache_dir
    from adapters._src.runtimes.onnxruntime.export import export_onnx
    from adapters._src.sources.onnx.serve import build_onnx
    from adapters._src.torch_module import torch_adapter

    fast, served_vit, vit = _fast_path(quick, default_cache_dir())
    yield fast
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        cnn = torch_adapter(_cnn(), None)
        x = torch.randn(1, 3, 32, 32)
        ours = build_onnx(export_onnx(cnn, Path(tmp) / "cnn.onnx", x))
        yield _per_call("small CNN batch 1", ours, cnn, x, quick)
        linear = torch_adapter(torch.nn.Linear(8, 4), None)
        x = torch.randn(2, 8)
        ours = build_onnx(export_onnx(linear, Path(tmp) / "linear.onnx", x))
        yield _per_call("tiny Linear batch 2", ours, linear, x, quick)
    yield _per_call("ViT-S/16 batch 1", served_vit, vit, torch.randn(1, 3, 224, 224), quick)


def _print(rows: Iterable[dict[str, Any]]) -> None:
    print(
        f"{'case':36} {'ours':22} {'baseline':16} {'ours ms':>9} {'base ms':>9} "
        f"{'ratio':>6} {'spread':>6}  notes"
    )
    for r in rows:
        notes = ""
        if "max_abs_diff" in r:
            notes = (
                f"speedup {r['speedup']:.2f}x (goal {r['goal_speedup']}x), max |diff| "
                f"{r['max_abs_diff']:.2e}, cache {r['cache']}"
            )
        print(
            f"{r['case']:36} {r['ours']:22} {r['baseline']:16} {r['ours_s'] * 1e3:9.3f} "
            f"{r['baseline_s'] * 1e3:9.3f} {r['ratio']:6.3f} {r['spread']:6.2f}  {notes}"
        )


if __name__ == "__main__":
    _print(run(quick="--full" not in sys.argv))

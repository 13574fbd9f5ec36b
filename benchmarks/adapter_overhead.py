"""Adapter overhead: ``adapter.forward(params, x)`` vs the raw ``module(x)`` call.

Same weights, same input, interleaved runs, for a ViT-S/16 and a ResNet-18 (timm,
``pretrained=False``) at batch 1 and 16. Two adapter paths are timed:

- ``adapter(x)``: the adapter's own params (identity fast path, direct module call);
- ``forward(copy, x)``: a different params dict with the same values (``functional_call`` on
  a per-thread structural copy), the path taken by swapped or fine-tuned weights.

A third case compares the two thread-safety designs of ``adapters/_src/torch_module.py`` with
4 threads sharing one adapter: per-thread structural copies (used) vs a global lock.

Run: ``python -m benchmarks.adapter_overhead [--full]``.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from benchmarks._timing import interleaved, ratio_row

MODELS = ("vit_small_patch16_224", "resnet18")


def _case(model_name: str, batch: int, quick: bool) -> list[dict[str, Any]]:
    import adapters
    import specs

    backbone = adapters.build(
        specs.TimmSpec(model_name, pretrained=False, model_kwargs={"num_classes": 0})
    )
    module = backbone.module
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    copied = {k: v.clone() for k, v in backbone.params.items()}
    # same result on both paths before timing anything
    with torch.no_grad():
        reference = module(x)
    torch.testing.assert_close(backbone(x), reference, rtol=0, atol=0)
    torch.testing.assert_close(backbone.forward(copied, x), reference, rtol=0, atol=1e-6)

    def raw() -> Any:
        with torch.no_grad():
            return module(x)

    fns = {
        "raw module(x)": raw,
        "adapter(x)": lambda: backbone(x),
        "forward(copy, x)": lambda: backbone.forward(copied, x),
    }
    repeats = (3 if batch > 1 else 7) if quick else 21
    timings = interleaved(fns, repeats=repeats, warmup=1)
    case = f"{model_name} batch {batch}"
    return [
        ratio_row(case, timings, "adapter(x)", "raw module(x)", suite="adapter_overhead"),
        ratio_row(case, timings, "forward(copy, x)", "raw module(x)", suite="adapter_overhead"),
    ]


def _threads_case(quick: bool) -> dict[str, Any]:
    """4 threads x calls with their own params: per-thread copies vs one lock."""
    import adapters
    import specs
    from adapters._src.torch_module import module_params

    backbone = adapters.build(
        specs.TimmSpec("vit_tiny_patch16_224", pretrained=False, model_kwargs={"num_classes": 0})
    )
    module = backbone.module
    x = torch.randn(1, 3, 224, 224)
    params = [{k: v.clone() for k, v in module_params(module).items()} for _ in range(4)]
    lock = threading.Lock()

    def locked(p: Any) -> Any:
        with lock, torch.no_grad():
            return torch.func.functional_call(module, p, (x,))

    calls = 8 if quick else 16
    # one long-lived pool, as in a server: per-thread copies are made once, in the warmup
    pool = ThreadPoolExecutor(max_workers=4)

    def pool_run(fn: Any) -> Any:
        return list(pool.map(fn, [params[i % 4] for i in range(calls)]))

    fns = {
        "per-thread copies": lambda: pool_run(lambda p: backbone.forward(p, x)),
        "global lock": lambda: pool_run(locked),
    }
    try:
        timings = interleaved(fns, repeats=3 if quick else 9, warmup=1)
    finally:
        pool.shutdown()
    return ratio_row(
        "vit_tiny 4 threads", timings, "per-thread copies", "global lock", suite="adapter_overhead"
    )


def run(quick: bool = True) -> list[dict[str, Any]]:
    """Rows ``ours / baseline``; below 1.02 means within 2% of the raw module call."""
    rows = []
    for model_name in MODELS:
        for batch in (1, 16):
            rows.extend(_case(model_name, batch, quick))
    rows.append(_threads_case(quick))
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'case':26} {'ours':18} {'baseline':18} {'ours ms':>9} {'base ms':>9} {'ratio':>7} {'spread':>7}"
    )
    for r in rows:
        print(
            f"{r['case']:26} {r['ours']:18} {r['baseline']:18} {r['ours_s'] * 1e3:9.2f} "
            f"{r['baseline_s'] * 1e3:9.2f} {r['ratio']:7.3f} {r['spread']:7.2f}"
        )


if __name__ == "__main__":
    _print(run(quick="--full" not in sys.argv))

"""`embed` throughput against the bare backbone forward on the same preprocessed images.

``ours`` is the whole embed pipeline on digits (decode + preprocess in the prefetch thread,
adapter forward, pooling, copy into the aligned output buffer, progress bar off);
``baseline`` is ``module(x)`` under ``torch.inference_mode()`` over the same images,
preprocessed once up front. The goal is ours / baseline <= 1 / 0.9 (>= 90% of the
forward-only throughput). Each row says where the rest goes: the time the backbone waited on
the loader (``wait_s``), the adapter's own forward on the prepared batches
(``adapter_forward_s``: ``functional_call`` and the output transforms, no loader), and the
time the prefetch thread spent preprocessing (``produce_s``), which overlaps the forward but
competes for the same cores.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks._timing import interleaved, ratio_row

#: (case, spec, images, batch size); quick cases stay under ~60 s on 2 cores
QUICK = [("vit_tiny@64 digits", {"img_size": 64}, 256, 64)]
FULL = [
    ("vit_tiny@64 digits", {"img_size": 64}, 512, 64),
    ("vit_tiny@224 digits", {}, 256, 64),
]


def _case(name: str, model_kwargs: dict[str, Any], n: int, batch_size: int) -> dict[str, Any]:
    import adapters
    import specs
    from adapters._src.data import LoaderStats, load_dataset, preprocess_batch
    from adapters._src.embed import embed_dataset, resolve_preprocess

    spec = specs.TimmSpec(
        "vit_tiny_patch16_224", pretrained=False, model_kwargs={"num_classes": 0, **model_kwargs}
    )
    backbone = adapters.build(spec)
    pre = resolve_preprocess(backbone)
    ds = load_dataset("digits", limit=n)
    batches = [
        preprocess_batch(ds.images[i : i + batch_size], pre) for i in range(0, n, batch_size)
    ]
    module = backbone.module
    stats_box: list[LoaderStats] = []

    def bare() -> None:
        with torch.inference_mode():
            for x in batches:
                module(x)

    def adapter_only() -> None:
        with torch.inference_mode():
            for x in batches:
                backbone.forward(backbone.params, x)

    def ours() -> None:
        stats = LoaderStats()
        embed_dataset(backbone, ds, pre, batch_size=batch_size, progress=False, stats=stats)
        stats_box.append(stats)

    fns = {"embed": ours, "forward": bare, "adapter_forward": adapter_only}
    timings = interleaved(fns, repeats=5 if n <= 256 else 3, warmup=1)
    last = stats_box[-1]
    row = ratio_row(
        name,
        timings,
        "embed",
        "forward",
        images=n,
        batch_size=batch_size,
        throughput_pct=round(
            100 * timings["forward"]["median_s"] / timings["embed"]["median_s"], 1
        ),
        adapter_forward_s=round(timings["adapter_forward"]["median_s"], 4),
        wait_s=round(last.wait_s, 3),
        produce_s=round(last.produce_s, 3),
    )
    return row


def run(quick: bool = True) -> list[dict[str, Any]]:
    """Rows of `embed` vs bare forward throughput (``throughput_pct``: ours as % of forward)."""
    return [_case(*case) for case in (QUICK if quick else FULL)]


if __name__ == "__main__":
    import sys

    rows = run(quick="--full" not in sys.argv)
    keys = [
        "case",
        "ours_s",
        "baseline_s",
        "adapter_forward_s",
        "ratio",
        "throughput_pct",
        "wait_s",
        "produce_s",
        "spread",
    ]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys))

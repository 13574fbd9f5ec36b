"""`embed` throughput against the bare backbone forward on the same preprocessed images.

``ours`` is the whole embed pipeline on digits (decode + preprocess in the prefetch thread,
adapter forward, pooling, copy into the aligned output buffer, progress bar off);
``baseline`` is ``module(x)`` under ``torch.inference_mode()`` over the same images,
preprocessed once up front. The goal is ours / baseline <= 1 / 0.9 (>= 90% of the
forward-only throughput). Each row says where the rest goes:

- ``adapter_forward_s``: the adapter's own forward on the prepared batches
  (``functional_call`` and the output transforms, no loader);
- ``wait_s``: the time the forward waited on the loader;
- ``produce_s`` / ``produce_cpu_s``: wall and CPU seconds the prefetch thread spent decoding
  and preprocessing. It overlaps the forward but competes for the same cores, so
  ``preprocess_cpu_pct`` (its CPU time as a share of the bare forward's CPU time,
  ``forward_cpu_s``) is roughly the throughput it costs;
- ``embed_cpu_s``: the process CPU time of a whole embed run, against ``forward_cpu_s``.

The CPU is shared with other processes here, so besides the medians each row gives
``throughput_pct_best``: the ratio of the fastest runs, the least disturbed ones. The CPU
times are medians over the runs too; they move much less with load than the wall times.

Run: ``python -m benchmarks.embed_bench [--full]``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from benchmarks._timing import interleaved, ratio_row

#: (case, model kwargs, images, batch size, repeats); the run time is in the results record
QUICK = [("vit_tiny@64 digits", {"img_size": 64}, 256, 64, 9)]
FULL = [
    ("vit_tiny@64 digits", {"img_size": 64}, 512, 64, 9),
    ("vit_tiny@224 digits", {}, 256, 64, 5),
]


def _case(
    name: str, model_kwargs: dict[str, Any], n: int, batch_size: int, repeats: int
) -> dict[str, Any]:
    import adapters
    import specs
    from adapters._src.app.backbone import resolve_preprocess
    from adapters._src.app.data.datasets import load_dataset
    from adapters._src.app.data.images import preprocess_batch
    from adapters._src.app.data.loader import LoaderStats
    from adapters._src.app.engine import embed_dataset

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
    runs: list[LoaderStats] = []
    forward_cpu: list[float] = []
    embed_cpu: list[float] = []

    def bare() -> None:
        c0 = time.process_time()
        with torch.inference_mode():
            for x in batches:
                module(x)
        forward_cpu.append(time.process_time() - c0)

    def adapter_only() -> None:
        with torch.inference_mode():
            for x in batches:
                backbone.forward(backbone.params, x)

    def ours() -> None:
        stats = LoaderStats()
        c0 = time.process_time()
        embed_dataset(backbone, ds, pre, batch_size=batch_size, progress=False, stats=stats)
        embed_cpu.append(time.process_time() - c0)
        runs.append(stats)

    fns = {"embed": ours, "forward": bare, "adapter_forward": adapter_only}
    timings = interleaved(fns, repeats=repeats, warmup=1)
    # drop the warmup round
    runs, forward_cpu, embed_cpu = runs[1:], forward_cpu[1:], embed_cpu[1:]
    fwd_cpu = statistics.median(forward_cpu)

    def med(field: str) -> float:
        return statistics.median(getattr(s, field) for s in runs)

    fwd, emb = timings["forward"], timings["embed"]
    return ratio_row(
        name,
        timings,
        "embed",
        "forward",
        images=n,
        batch_size=batch_size,
        throughput_pct=round(100 * fwd["median_s"] / emb["median_s"], 1),
        throughput_pct_best=round(100 * fwd["min_s"] / emb["min_s"], 1),
        adapter_forward_s=round(timings["adapter_forward"]["median_s"], 4),
        wait_s=round(med("wait_s"), 4),
        produce_s=round(med("produce_s"), 4),
        produce_cpu_s=round(med("produce_cpu_s"), 4),
        forward_cpu_s=round(fwd_cpu, 4),
        embed_cpu_s=round(statistics.median(embed_cpu), 4),
        preprocess_cpu_pct=round(100 * med("produce_cpu_s") / fwd_cpu, 2),
    )


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
        "throughput_pct",
        "throughput_pct_best",
        "wait_s",
        "produce_s",
        "produce_cpu_s",
        "forward_cpu_s",
        "embed_cpu_s",
        "preprocess_cpu_pct",
        "spread",
    ]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys))

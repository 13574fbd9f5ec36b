"""The embed pipeline with decoding workers (``embed --workers``) against ``--workers 0``.

A folder of JPEGs (500x375, written to a temporary folder) embedded at 224 px by
EfficientNet-Lite0 served by ONNX Runtime, where decoding is the bottleneck. Interleaved in one
process, the same images each round:

- ``workers=0``: every batch decoded between two forwards (nothing overlaps);
- ``workers=1``: one thread decodes ahead (what ``embed`` did before ``--workers``);
- ``workers=N``: ``N`` threads, the number of cores (the default).

Besides, ``decode_ips`` is one thread decoding and preprocessing alone and ``backbone_ips`` the
forward alone on the decoded batches, so ``goal_pct`` is the pipeline's throughput as a
percentage of ``min(backbone_ips, decode_ips x N)`` (the issue's goal: at least 90). Each row
records the CPU model (``lscpu``) and the load averages before and after.

Run: ``python -m benchmarks.embed_pipeline [--full] [--out FILE]`` (default
``benchmarks/results/local/embed_pipeline.json``; ``benchmarks/results/embed_pipeline.json``
is the committed run), or ``python -m benchmarks --only embed_pipeline``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import cpu_model
from benchmarks._timing import interleaved, load_average, ratio_row

#: (images, batch size, rounds)
QUICK = (96, 32, 3)
FULL = (256, 32, 5)
MODEL = "universal/efficientnet_lite0_imagenet"
LOCAL = Path(__file__).resolve().parent / "results" / "local" / "embed_pipeline.json"


def write_jpegs(root: Path, n: int) -> None:
    """``n`` JPEGs of 500x375 in two class folders: smooth patterns plus noise (a photo's
    decoding cost, not a flat image's)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500]
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        base = np.sin(xx / (7 + i % 5)) * 60 + np.cos(yy / (9 + i % 7)) * 60 + 128
        noisy = base[..., None] + rng.normal(0, 20, (375, 500, 3))
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
            folder / f"{i}.jpg", quality=90
        )


def _alone(ds: Any, pre: Any, backbone: Any, batch_size: int) -> tuple[float, float]:
    """Images per second of one thread decoding alone, and of the forward alone."""
    import torch

    from adapters._src.app.data.loader import LoaderStats, make_batch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker decodes on the CPU
    t0 = time.perf_counter()
    batches = [
        make_batch(ds, pre, lo, min(lo + batch_size, len(ds)), False, LoaderStats())
        for lo in range(0, len(ds), batch_size)
    ]
    decode_s = time.perf_counter() - t0
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x, _ in batches:
            backbone(x)
    return len(ds) / decode_s, len(ds) / (time.perf_counter() - t0)


def run(quick: bool = True) -> list[dict[str, Any]]:
    """One row: ``workers=N`` against ``workers=0`` (``ratio`` below 1 is faster)."""
    from adapters._src.app.backbone import build_backbone
    from adapters._src.app.data.datasets import load_dataset
    from adapters._src.app.data.loader import default_workers
    from adapters._src.app.engine import embed_dataset

    n, batch_size, rounds = QUICK if quick else FULL
    workers = default_workers()
    backbone, pre = build_backbone(MODEL, "onnxruntime", 224, None, None, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), n)
        ds = load_dataset(tmp)
        load_before = load_average()
        decode_ips, backbone_ips = _alone(ds, pre, backbone, batch_size)

        def embed_with(w: int):
            return lambda: embed_dataset(
                backbone, ds, pre, batch_size=batch_size, progress=False, workers=w
            )

        names = {f"workers={w}": embed_with(w) for w in sorted({0, 1, workers})}
        timings = interleaved(names, repeats=rounds, warmup=1)
    ours = f"workers={workers}"
    embed_ips = n / timings[ours]["median_s"]
    bound = min(backbone_ips, decode_ips * workers)
    return [
        ratio_row(
            f"{n} JPEGs 500x375 -> 224 px, EfficientNet-Lite0 (onnxruntime), batch {batch_size}",
            timings,
            ours,
            "workers=0",
            workers=workers,
            images=n,
            ips={name: round(n / t["median_s"], 1) for name, t in timings.items()},
            vs_one_worker=round(timings[ours]["median_s"] / timings["workers=1"]["median_s"], 3),
            decode_ips=round(decode_ips, 1),
            backbone_ips=round(backbone_ips, 1),
            goal_pct=round(100 * embed_ips / bound, 1),
            cpu=cpu_model(),
            load_before=load_before,
            load_after=load_average(),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embed_pipeline")
    parser.add_argument("--full", action="store_true", help=f"{FULL[0]} images, {FULL[2]} rounds")
    parser.add_argument("--out", type=Path, default=LOCAL, help=f"result file (default: {LOCAL})")
    args = parser.parse_args(argv)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows = run(quick=not args.full)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": date, "rows": rows}, indent=1))
    for row in rows:
        print(json.dumps(row, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

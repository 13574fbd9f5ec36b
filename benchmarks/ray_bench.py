"""``embed --engine ray`` (2 workers on a local Ray) against the single-process ``embed``.

Both sides are the whole command, in this process: ``ours`` is `embed_on_ray` (the driver's
build for the preprocessing, the actor pool starting and building its backbones, decoding,
the forward passes, the shards and the manifest), ``baseline`` is ``cli.main(["embed", ...])``
(build, the prefetching loader, the forward passes, the file). They alternate run by run. The
local Ray itself is started once before the timed runs; its start-up (``ray.init`` +
``ray.shutdown``) is measured on its own, as ``ray_start_s``.

Cases: digits and a folder of PNGs (decoded by PIL in the Ray tasks), each at full size and at
one batch (the job's fixed cost: actors start and build), giving ``rows_per_s`` for both
engines and ``ray_marginal_rows_per_s`` = (rows - one batch) / (time - one-batch time), what
more rows cost once the actors run. Every row records ``os.getloadavg()`` before and after:
on a shared machine the ratios are what to read, not the seconds.

Run: ``python -m benchmarks.ray_bench [--full]`` (writes ``benchmarks/results/ray_bench.json``)
or as the ``ray`` suite of ``python -m benchmarks``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._timing import interleaved, ratio_row

MODEL = {"model_name": "vit_tiny_patch16_224", "img_size": 64}
WORKERS = 2
BATCH = 32
#: (rows of digits, PNGs in the folder, timed rounds); quick is a few minutes on 2 loaded cores
QUICK = (256, 128, 2)
FULL = (1024, 512, 4)


def _spec_file(root: Path) -> str:
    import timm
    import torch
    import yaml
    from safetensors.torch import save_file

    kwargs = {"img_size": MODEL["img_size"], "num_classes": 0}
    torch.manual_seed(0)
    model = timm.create_model(MODEL["model_name"], pretrained=False, **kwargs).eval()
    save_file(model.state_dict(), root / "w.safetensors")
    spec = {
        "source": "timm",
        "model_name": MODEL["model_name"],
        "pretrained": False,
        "checkpoint_path": str(root / "w.safetensors"),
        "model_kwargs": kwargs,
    }
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    return str(root / "spec.yaml")


def _folder(root: Path, n: int) -> str:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % 3
        (root / "images" / str(c)).mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 255, size=(96, 80, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "images" / str(c) / f"{i:05d}.png")
    return str(root / "images")


def ray_start_seconds(repeats: int = 2) -> list[float]:
    """Seconds of ``ray.init(num_cpus=2)`` + ``ray.shutdown()`` (this process, no dashboard)."""
    import ray

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ray.init("local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
        ray.shutdown()
        times.append(time.perf_counter() - t0)
    return times


def _case(
    name: str, spec: str, data: str, rows: int, limit: int | None, repeats: int, root: Path
) -> dict[str, Any]:
    from adapters._src.app import cli
    from adapters._src.app.ray.engine import embed_on_ray

    counter = itertools.count()
    load_before = os.getloadavg()

    def ours() -> None:
        out = root / f"ray_{name}_{next(counter)}"  # a fresh directory: nothing to resume
        embed_on_ray(spec, data, out, limit=limit, batch_size=BATCH, num_workers=WORKERS,
                     progress=False)  # fmt: skip

    def baseline() -> None:
        out = root / f"single_{name}_{next(counter)}.safetensors"
        argv = ["embed", spec, "--data", data, "--batch-size", str(BATCH), "--out", str(out)]
        if cli.main([*argv, *(["--limit", str(limit)] if limit else [])]) != 0:
            raise RuntimeError(f"single-process embed of {data!r} failed (see stderr)")

    timings = interleaved({"ray": ours, "process": baseline}, repeats=repeats, warmup=0)
    return ratio_row(
        name,
        timings,
        "ray",
        "process",
        rows=rows,
        num_workers=WORKERS,  # asked for; a one-batch job runs on one actor (no idle actor)
        batch_size=BATCH,
        ray_rows_per_s=round(rows / timings["ray"]["median_s"], 2),
        process_rows_per_s=round(rows / timings["process"]["median_s"], 2),
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
    )


def run(quick: bool = True) -> list[dict[str, Any]]:
    """Rows: ray vs single-process embed on digits and a PNG folder, full and one batch."""
    import ray

    n_digits, n_images, repeats = QUICK if quick else FULL
    start = ray_start_seconds()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        root = Path(tmp)
        spec = _spec_file(root)
        folder = _folder(root, n_images)
        ray.init("local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
        try:
            cases = [
                ("digits", "digits", n_digits, n_digits),
                ("digits, 1 batch", "digits", BATCH, BATCH),
                ("png folder", folder, n_images, None),
                ("png folder, 1 batch", folder, BATCH, BATCH),
            ]
            for name, data, n, limit in cases:
                rows.append(_case(name, spec, data, n, limit, repeats, root))
                print(f"  {name}: {rows[-1]}", file=sys.stderr, flush=True)
        finally:
            ray.shutdown()
    for full, one in ((rows[0], rows[1]), (rows[2], rows[3])):
        extra = full["ours_s"] - one["ours_s"]
        full["ray_marginal_rows_per_s"] = round((full["rows"] - BATCH) / extra, 2) if extra else 0
        full["ray_fixed_s"] = round(one["ours_s"], 2)
    for r in rows:
        r["ray_start_s"] = round(statistics.median(start), 2)
    return rows


def main(argv: list[str]) -> int:
    import platform

    rows = run(quick="--full" not in argv)
    out = Path("benchmarks/results/ray_bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": "--full" not in argv,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "rows": rows,
    }
    out.write_text(json.dumps(payload, indent=2))
    for r in rows:
        print(
            f"{r['case']}: ray {r['ray_rows_per_s']} rows/s vs process {r['process_rows_per_s']} "
            f"rows/s (ratio {r['ratio']:.3g}, spread {r['spread']:.0%}, load "
            f"{r['loadavg_before'][0]:.1f}->{r['loadavg_after'][0]:.1f})"
        )
    print(f"ray start {rows[0]['ray_start_s']} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``embed --engine ray`` on the command line: the lines the single-process ``embed`` prints
(the backbone, its weights, the preprocessing, what was embedded at what rate, the skipped
images, the output), for the Ray job of `engine.embed_on_ray`."""

from __future__ import annotations

import argparse
from typing import Any

from ...preprocess import Preprocess
from ..backbone import runtime_line
from ..describe import say, say_backbone
from ..flags import runtime
from ..job import framework_label
from .engine import embed_on_ray


def embed_ray(args: argparse.Namespace, *, image_size: int | None) -> int:
    """``python -m adapters embed ... --engine ray`` (flags checked by the ``embed`` command;
    ``image_size`` resolved by it: ``--image-size``, or the default job's size)."""
    say(f"loading backbone {args.spec} ...")
    result = embed_on_ray(
        args.spec,
        args.data,
        args.out,
        labels=args.labels,
        limit=args.limit,
        batch_size=args.batch_size,
        strict=args.strict_images,
        runtime=runtime(args),
        image_size=image_size,
        mean=args.mean,
        std=args.std,
        address=args.address,
        num_workers=args.num_workers,
        gpus_per_worker=args.gpus_per_worker,
        verbose=args.verbose,
        precision=args.precision,
        out_dtype=args.out_dtype,
        on_backbone=lambda backbone, pre: _describe(args, backbone, pre),
    )
    done = (
        f"embedded {result.rows} images into {result.shards} shard(s) ({result.written} "
        f"written, {result.reused} reused)"
    )
    if result.new_rows:
        rate = result.new_rows / max(result.seconds, 1e-9)
        over = f" over the {result.new_rows} new" if result.reused else ""
        say(
            f"{done} with {result.workers} Ray worker(s) in {result.seconds:.1f}s ({rate:.1f} "
            f"img/s{over}; pooling: {result.pooling}; Ray start {result.startup_s:.1f}s)"
        )
    else:
        say(f"{done}: every shard was complete, nothing to embed (Ray not started)")
    if result.skipped:
        names = ", ".join(result.skipped[:5])
        say(f"skipped {len(result.skipped)} unreadable image(s): {names}")
    say(f"wrote {result.out}")
    return 0


def _describe(args: argparse.Namespace, backbone: Any, pre: Preprocess) -> None:
    """What the driver built: the process engine's backbone, weights, note and
    preprocessing lines, the device being each worker's and the runtime the one they run
    (with ``--runtime auto``: the driver's choice, and why, as the process engine says it)."""
    gpus = args.gpus_per_worker
    device = f"cuda ({gpus:g} GPU each)" if gpus else "cpu"
    chosen = runtime(args)
    if isinstance((backbone.info or {}).get("auto"), dict):  # auto chose, on the driver
        framework = framework_label(backbone)
        say(f"runtime: {runtime_line(chosen, backbone.info)}")
    elif chosen == "auto":  # GPU workers: not timed on the driver
        framework = f"{backbone.framework}, --runtime auto's choice for GPU workers"
    else:
        framework = backbone.framework if chosen == "torch" else chosen
    say_backbone(backbone, 0, f"{device} per Ray worker", framework)
    say(pre.describe())

"""``embed --engine ray`` on the command line: the lines the single-process ``embed`` prints
(the backbone, its weights, the preprocessing, what was embedded at what rate, the skipped
images, the output), for the Ray job of `ray_embed.embed_on_ray`."""

from __future__ import annotations

import argparse
from typing import Any

from ..preprocess import Preprocess


def _print(line: str) -> None:
    print(line, flush=True)


def embed_ray(args: argparse.Namespace, *, image_size: int | None) -> int:
    """``python -m adapters embed ... --engine ray`` (flags checked by ``cli.cmd_embed``;
    ``image_size`` resolved by it: ``--image-size``, or the default job's size)."""
    from .ray_embed import embed_on_ray

    _print(f"loading backbone {args.spec} ...")
    result = embed_on_ray(
        args.spec,
        args.data,
        args.out,
        labels=args.labels,
        limit=args.limit,
        batch_size=args.batch_size,
        strict=args.strict_images,
        runtime=args.runtime,
        image_size=image_size,
        mean=args.mean,
        std=args.std,
        address=args.address,
        num_workers=args.num_workers,
        gpus_per_worker=args.gpus_per_worker,
        verbose=args.verbose,
        on_backbone=lambda backbone, pre: _describe(args, backbone, pre),
    )
    done = (
        f"embedded {result.rows} images into {result.shards} shard(s) ({result.written} "
        f"written, {result.reused} reused)"
    )
    if result.new_rows:
        rate = result.new_rows / max(result.seconds, 1e-9)
        over = f" over the {result.new_rows} new" if result.reused else ""
        _print(
            f"{done} with {result.workers} Ray worker(s) in {result.seconds:.1f}s ({rate:.1f} "
            f"img/s{over}; pooling: {result.pooling}; Ray start {result.startup_s:.1f}s)"
        )
    else:
        _print(f"{done}: every shard was complete, nothing to embed (Ray not started)")
    if result.skipped:
        names = ", ".join(result.skipped[:5])
        _print(f"skipped {len(result.skipped)} unreadable image(s): {names}")
    _print(f"wrote {result.out}")
    return 0


def _describe(args: argparse.Namespace, backbone: Any, pre: Preprocess) -> None:
    """What the driver built: the process engine's backbone, weights, note and
    preprocessing lines, the device being each worker's."""
    from .describe import describe_parameters, logits_note
    from .weights import describe_weights

    gpus = args.gpus_per_worker
    device = f"cuda ({gpus:g} GPU each)" if gpus else "cpu"
    framework = backbone.framework if args.runtime == "torch" else args.runtime
    _print(f"backbone: {describe_parameters(backbone)} on {device} per Ray worker ({framework})")
    _print(f"weights: {describe_weights(backbone, 0)}")
    note = logits_note(backbone)
    if note:
        _print(f"note: {note}")
    _print(pre.describe())

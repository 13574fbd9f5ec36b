"""The steps ``embed`` and ``probe`` share: the backbone built from the flags, said as it
loads (building one can take seconds before the first batch: timm, a checkpoint, a first CUDA
call), and a dataset embedded in this process with its summary line."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .backbone import build_backbone
from .describe import say, say_backbone
from .flags import runtime


def load_backbone(
    args: argparse.Namespace,
    image_size: int | None,
    seed: int | None = None,
    images: int | None = None,
) -> tuple[Any, Any]:
    """`build_backbone` from the flags, printing what was built: its size, device and
    framework (with ``--runtime auto``: the runtime chosen and why), its weights, and a note
    when its output is a classifier's logits. ``images``: how many the job embeds (``auto``
    times the runtimes on a batch of ``--batch-size``, or fewer when the job has fewer).

    Returns:
        The backbone and its `Preprocess`.
    """
    say(f"loading backbone {args.spec} ...")
    batch = args.batch_size if images is None else max(1, min(args.batch_size, images))
    backbone, pre = build_backbone(
        args.spec, runtime(args), image_size, args.mean, args.std, seed, args.device, say=say,
        batch_size=batch,
    )  # fmt: skip
    device = (backbone.info or {}).get("device") or "cpu"
    say_backbone(backbone, seed, device, framework_label(backbone))
    return backbone, pre


def framework_label(backbone: Any) -> str:
    """What runs the backbone, as the ``backbone:`` line says it: its framework, and with
    ``--runtime auto`` the runtime chosen and how much faster than torch it measured."""
    record = (backbone.info or {}).get("auto")
    if not isinstance(record, dict) or "why" in record:
        return backbone.framework
    speedup = record.get("speedup")
    faster = f": {speedup:.1f}x torch" if speedup and record["runtime"] != "torch" else ""
    return f"{record['runtime']}, chosen by --runtime auto{faster}"


def embed(args: argparse.Namespace, backbone: Any, pre: Any, ds: Any) -> Any:
    """`engine.embed_dataset` with the flags, printing the preprocessing, then the rows and
    rate embedded and the images skipped."""
    from .data.loader import LoaderStats, default_workers
    from .engine import embed_dataset

    say(pre.describe())
    stats = LoaderStats()
    t0 = time.perf_counter()
    workers = default_workers() if args.workers is None else args.workers
    emb = embed_dataset(
        backbone,
        ds,
        pre,
        batch_size=args.batch_size,
        strict=args.strict_images,
        stats=stats,
        workers=workers,
    )
    seconds = time.perf_counter() - t0
    n = len(emb.ids)
    say(
        f"embedded {n} images -> {tuple(emb.embeddings.shape)} in {seconds:.1f}s "
        f"({n / seconds:.1f} img/s; pooling: {emb.metadata['pooling']}; {workers} decoding "
        f"worker{'' if workers == 1 else 's'})"
    )
    if stats.skipped:
        say(f"skipped {len(stats.skipped)} unreadable image(s): {', '.join(stats.skipped[:5])}")
    return emb

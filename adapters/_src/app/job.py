"""The steps ``embed`` and ``probe`` share: the backbone built from the flags, said as it
loads (building one can take seconds before the first batch: timm, a checkpoint, a first CUDA
call), and a dataset embedded in this process with its summary line."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .backbone import build_backbone
from .describe import say, say_backbone


def load_backbone(
    args: argparse.Namespace, image_size: int | None, seed: int | None = None
) -> tuple[Any, Any]:
    """`build_backbone` from the flags, printing what was built: its size, device and
    framework, its weights, and a note when its output is a classifier's logits.

    Returns:
        The backbone and its `Preprocess`.
    """
    say(f"loading backbone {args.spec} ...")
    backbone, pre = build_backbone(
        args.spec, args.runtime, image_size, args.mean, args.std, seed, args.device, say=say
    )
    device = (backbone.info or {}).get("device") or "cpu"
    say_backbone(backbone, seed, device, backbone.framework)
    return backbone, pre


def embed(args: argparse.Namespace, backbone: Any, pre: Any, ds: Any) -> Any:
    """`engine.embed_dataset` with the flags, printing the preprocessing, then the rows and
    rate embedded and the images skipped."""
    from .data.loader import LoaderStats
    from .engine import embed_dataset

    say(pre.describe())
    stats = LoaderStats()
    t0 = time.perf_counter()
    emb = embed_dataset(
        backbone, ds, pre, batch_size=args.batch_size, strict=args.strict_images, stats=stats
    )
    seconds = time.perf_counter() - t0
    n = len(emb.ids)
    say(
        f"embedded {n} images -> {tuple(emb.embeddings.shape)} in {seconds:.1f}s "
        f"({n / seconds:.1f} img/s; pooling: {emb.metadata['pooling']})"
    )
    if stats.skipped:
        say(f"skipped {len(stats.skipped)} unreadable image(s): {', '.join(stats.skipped[:5])}")
    return emb

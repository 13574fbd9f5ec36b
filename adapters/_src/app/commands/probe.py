"""``probe``: a JAX/Flax head trained on embeddings (read from ``embed``'s output, or embedded
here), its test metrics printed next to a baseline on the raw pixels, and optionally a report
directory (`report`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import flag_types
from ..data.datasets import load_dataset
from ..describe import say
from ..errors import CliError
from ..flags import (
    DEFAULT_DATA,
    DEFAULT_MODEL,
    add_backbone_flags,
    add_data_flags,
    add_job_spec,
    image_size,
)
from ..job import embed, load_backbone
from ..probing import format_table, run_probe, stratified_split
from ..store import is_embeddings_dir, load_embeddings

HELP = "train a JAX/Flax head on embeddings; report test metrics"
EXAMPLES = (
    "{prog} probe\n  {prog} probe emb.safetensors --head mlp --report out/\n"
    "  {prog} probe spec.yaml --data images/ --limit 500 --head mlp"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``SPEC`` (or embeddings), the data's and the backbone's flags, and the head's."""
    add_job_spec(
        p,
        f"spec, registry name, an embeddings .safetensors or an 'embed --engine ray' "
        f"directory (default: {DEFAULT_MODEL})",
    )
    add_data_flags(p)
    add_backbone_flags(p)
    p.add_argument("--head", choices=("linear", "mlp"), default="linear", help="the probe head")
    p.add_argument(
        "--epochs", type=flag_types.positive_int, default=100, help="training epochs of the head"
    )
    p.add_argument(
        "--lr",
        type=flag_types.positive_float,
        help="AdamW step size (default: 1e-2 linear, 1e-3 mlp)",
    )
    p.add_argument(
        "--seed",
        type=flag_types.seed,
        default=0,
        help="seed of random backbone weights, the split, the head",
    )
    p.add_argument("--report", metavar="DIR", help="write report.json and PNG plots here")


def run(args: argparse.Namespace) -> int:
    """Probe ``args.spec`` (embeddings, or a backbone to embed ``--data`` with first)."""
    start = time.perf_counter()
    # the first line comes before any framework import (torch alone takes seconds)
    stored = args.spec.endswith(".safetensors") or Path(args.spec).is_dir()  # embeddings
    on = "" if stored and args.data == DEFAULT_DATA else f" on {args.data}"
    say(f"probe {args.spec}{on}: {args.head} head, {args.epochs} epochs, seed {args.seed}")
    if args.report is not None and Path(args.report).is_file():
        raise CliError(f"--report: expected a directory, got the file {args.report!r}")
    from ..data.images import raw_pixels  # torch

    emb, ds, step = _probe_inputs(args)
    t_embed = time.perf_counter() - start  # step: "embed", or "load" for an embeddings file
    pixels = None
    if ds is not None:
        pixels = raw_pixels(ds.subset(np.searchsorted(ds.index, emb.ids)))
    result = run_probe(
        emb.embeddings,
        emb.labels,
        pixels=pixels,
        class_names=tuple(emb.class_names),
        head=args.head,
        epochs=args.epochs,
        seed=args.seed,
        learning_rate=args.lr,
    )
    total = time.perf_counter() - start
    say(
        f"split train/val/test = {result.split_sizes['train']}/{result.split_sizes['val']}/"
        f"{result.split_sizes['test']} (seed {args.seed}); features handed to JAX "
        f"{'without a copy' if result.zero_copy else 'with a copy'}"
    )
    say(format_table(result))
    say(
        f"time: {step} {t_embed:.1f}s, head {result.seconds['head']:.1f}s, "
        f"baseline {result.seconds['baseline']:.1f}s, total {total:.1f}s"
    )
    if args.report is not None:
        _report(args, result, emb, {"seconds_total": total, f"seconds_{step}": t_embed})
    return 0


def _report(args: argparse.Namespace, result: Any, emb: Any, seconds: dict[str, float]) -> None:
    """``--report DIR``: the report's files, and the line naming them."""
    from ..report import write_report

    paths = write_report(
        result,
        args.report,
        subject=f"{args.spec} on {emb.metadata.get('data', '')}",
        embeddings=emb.embeddings,
        labels=emb.labels,
        spec=emb.metadata.get("spec", ""),
        data=emb.metadata.get("data", ""),
        **seconds,
    )
    say(f"wrote {', '.join(str(p) for p in paths)}")


def _probe_inputs(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``probe``'s embeddings (loaded from a file or embedded here), the dataset behind
    them (None when it is not available) and which it was (``"load"`` or ``"embed"``)."""
    if args.spec.endswith(".safetensors") or is_embeddings_dir(args.spec):
        emb = load_embeddings(args.spec)
        if args.limit is not None:
            emb = emb.first(args.limit)  # the split below stays stratified over these rows
        return emb, _dataset_of(emb, args), "load"
    ds = load_dataset(args.data, labels=args.labels, limit=args.limit)
    stratified_split(ds.labels, seed=args.seed)  # too few images per class fails here, not later
    backbone, pre = load_backbone(args, image_size(args), args.seed)
    return embed(args, backbone, pre, ds), ds, "embed"


def _dataset_of(emb: Any, args: argparse.Namespace) -> Any:
    """The images behind an embeddings file, for the pixel baseline (None if unavailable)."""
    data = args.data if args.data != DEFAULT_DATA else emb.metadata.get("data", DEFAULT_DATA)
    if data != "digits" and not Path(data).exists():
        say(f"baseline skipped: the embedded data {data!r} is not available")
        return None
    ds = load_dataset(data, labels=args.labels)
    if emb.ids.size and (emb.ids.max() >= len(ds) or emb.ids.min() < 0):
        raise CliError(
            f"--data: the embeddings file's ids go up to {int(emb.ids.max())} but {data!r} has "
            f"{len(ds)} images; pass the data that was embedded"
        )
    ds = ds.subset(emb.ids)
    if list(ds.ids) != emb.items or not np.array_equal(ds.labels, emb.labels):
        raise CliError(
            f"--data: the images of {data!r} do not match the embeddings file's items and labels; "
            "pass the data that was embedded"
        )
    return ds

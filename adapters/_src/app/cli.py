"""``python -m adapters``: list, inspect, embed, probe, export.

Bad input (an unknown model, a missing folder, an unreadable image with ``--strict-images``,
labels not matching images, an output path in a missing directory, ``--device cuda`` without a
GPU) prints one line to stderr and exits with status 2, leaving no output file behind.

``--device`` (inspect, embed, probe) defaults to ``cuda`` when torch sees a GPU, else ``cpu``;
an ONNX model keeps its own device (``cpu`` unless given) and ``--runtime onnxruntime``
serves on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import input_device
from .backbone import CliError, build_backbone
from .data import DataError
from .embed import EmbedError
from .probe import ProbeError

#: what ``probe`` with no arguments runs (the README's main-job command)
DEFAULT_MODEL = "universal/vit_tiny_patch16_224_random"
DEFAULT_DATA = "digits"
RUNTIMES = ("torch", "onnxruntime")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except CliError as err:
        return _fail(str(err))
    except (DataError, EmbedError, ProbeError) as err:  # ours: the message is the whole story
        return _fail(str(err))
    except (ValueError, LookupError, OSError, BufferError, ImportError) as err:
        # spec, registry, data and backend errors: their messages say what to fix
        return _fail(f"{type(err).__name__}: {err}")


def _fail(message: str) -> int:
    line = " ".join(message.split())
    print(f"error: {line}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m adapters",
        description="Functional adapters for vision foundation-model backbones.",
    )
    parser.set_defaults(command=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("list", help="registry names, one a line")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard pattern (default: all)")
    p.set_defaults(command="list", run=cmd_list)

    p = sub.add_parser("inspect", help="build a backbone, run one example input, describe it")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_backbone_flags(p)
    p.set_defaults(command="inspect", run=cmd_inspect)

    p = sub.add_parser("embed", help="embed a dataset into a .safetensors file")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_data_flags(p, required=True)
    p.add_argument("--out", required=True, help="output .safetensors file")
    _add_backbone_flags(p)
    p.set_defaults(command="embed", run=cmd_embed)

    p = sub.add_parser("probe", help="train a JAX/Flax head on embeddings; report test metrics")
    p.add_argument(
        "spec",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"spec, registry name, or an embeddings .safetensors (default: {DEFAULT_MODEL})",
    )
    _add_data_flags(p, required=False)
    _add_backbone_flags(p)
    p.add_argument("--head", choices=("linear", "mlp"), default="linear")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, help="AdamW step size (default: 1e-2 linear, 1e-3 mlp)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of random backbone weights, the split, the head"
    )
    p.add_argument("--report", metavar="DIR", help="write report.json and PNG plots here")
    p.set_defaults(command="probe", run=cmd_probe)

    p = sub.add_parser("export", help="export a backbone to ONNX")
    p.add_argument("spec", help="spec file or registry name")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--image-size", type=int, help="example input size (default: the backbone's)")
    p.set_defaults(command="export", run=cmd_export, runtime="torch", mean=None, std=None)
    return parser


def _add_data_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--data",
        required=required,
        default=None if required else DEFAULT_DATA,
        help="'digits', an image folder (one sub-folder per class) or a .npz/.npy of images",
    )
    p.add_argument("--labels", help="a .npy of labels for a .npy of images")
    p.add_argument(
        "--limit",
        type=int,
        help="a fixed-seed random subset of this many images (of an embeddings file given to "
        "probe: its first N rows)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--strict-images", action="store_true", help="fail on an unreadable image (default: skip)"
    )


def _add_backbone_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-size", type=int, help="input size (default: the backbone's own)")
    p.add_argument(
        "--mean", type=float, nargs="+", help="per-channel mean (default: the backbone's)"
    )
    p.add_argument("--std", type=float, nargs="+", help="per-channel std (default: the backbone's)")
    p.add_argument("--runtime", choices=RUNTIMES, default="torch")
    p.add_argument(
        "--device",
        help="where the backbone runs: cpu, cuda or cuda:N (default: cuda if available, else "
        "cpu; an ONNX model: its spec's device)",
    )


def _print(*parts: Any) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from ..registry import list_models

    for name in list_models(args.pattern):
        _print(name)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import torch

    from .embed import spec_yaml

    backbone, pre = build_backbone(
        args.spec, args.runtime, args.image_size, args.mean, args.std, device=args.device
    )
    x = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    x = x.to(input_device(backbone) or "cpu")
    with torch.inference_mode():
        y = backbone.forward(backbone.params, x)
    import specs

    info = dict(backbone.info or {})
    tensors = [v for v in backbone.params.values() if hasattr(v, "shape")]
    count = sum(int(np.prod(tuple(v.shape))) for v in tensors)
    size = sum(
        int(np.prod(tuple(v.shape))) * v.element_size()
        for v in tensors
        if hasattr(v, "element_size")
    )
    _print(f"source:      {specs.source_of(backbone.spec)}")
    _print(f"framework:   {backbone.framework}")
    _print(f"device:      {info.get('device') or 'cpu'}")
    _print(f"input:       {tuple(x.shape)} float32 ({pre.describe()})")
    _print(f"output kind: {_kind(y)}")
    _print(f"output:      {_shape_dtype(y)}")
    _print(f"parameters:  {count:,} ({size / 2**20:.2f} MiB)")
    transforms = getattr(backbone.spec, "transforms", ())
    _print(f"transforms:  {', '.join(type(t).__name__ for t in transforms) or 'none'}")
    _print("spec:")
    for line in spec_yaml(backbone.spec).rstrip().splitlines():
        _print(f"  {line}")
    return 0


def _kind(y: Any) -> str:
    if isinstance(y, (list, tuple)):
        return f"list of {len(y)} feature maps"
    ndim = len(getattr(y, "shape", ()))
    return {2: "features (B, D)", 3: "tokens (B, T, D)", 4: "feature map (B, C, H, W)"}.get(
        ndim, f"array of rank {ndim}"
    )


def _shape_dtype(y: Any) -> str:
    if isinstance(y, (list, tuple)):
        return "[" + ", ".join(_shape_dtype(v) for v in y) + "]"
    return f"{tuple(y.shape)} {str(y.dtype).replace('torch.', '')}"


def _embed(args: argparse.Namespace, backbone: Any, pre: Any, ds: Any) -> Any:
    from .data import LoaderStats
    from .embed import embed_dataset

    _print(pre.describe())
    _print(f"backbone on {(backbone.info or {}).get('device') or 'cpu'} ({backbone.framework})")
    stats = LoaderStats()
    t0 = time.perf_counter()
    emb = embed_dataset(
        backbone, ds, pre, batch_size=args.batch_size, strict=args.strict_images, stats=stats
    )
    seconds = time.perf_counter() - t0
    n = len(emb.ids)
    _print(
        f"embedded {n} images -> {tuple(emb.embeddings.shape)} in {seconds:.1f}s "
        f"({n / seconds:.1f} img/s; pooling: {emb.metadata['pooling']})"
    )
    if stats.skipped:
        _print(f"skipped {len(stats.skipped)} unreadable image(s): {', '.join(stats.skipped[:5])}")
    return emb


def cmd_embed(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .embed import check_output_path, save_embeddings

    out = check_output_path(args.out)
    ds = load_dataset(args.data, labels=args.labels, limit=args.limit)
    backbone, pre = build_backbone(
        args.spec, args.runtime, args.image_size, args.mean, args.std, device=args.device
    )
    emb = _embed(args, backbone, pre, ds)
    save_embeddings(emb, out)
    _print(f"wrote {out}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from .data import load_dataset, raw_pixels
    from .embed import load_embeddings
    from .probe import format_table, run_probe
    from .report import write_report

    start = time.perf_counter()
    if args.report is not None and Path(args.report).is_file():
        raise CliError(f"--report: expected a directory, got the file {args.report!r}")
    if args.spec.endswith(".safetensors"):
        emb = load_embeddings(args.spec)
        if args.limit is not None:
            emb = emb.first(args.limit)  # the split below stays stratified over these rows
        ds = _dataset_of(emb, args)
    else:
        ds = load_dataset(args.data, labels=args.labels, limit=args.limit)
        backbone, pre = build_backbone(
            args.spec, args.runtime, args.image_size, args.mean, args.std, args.seed, args.device
        )
        emb = _embed(args, backbone, pre, ds)
    t_embed = time.perf_counter() - start
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
    _print(
        f"split train/val/test = {result.split_sizes['train']}/{result.split_sizes['val']}/"
        f"{result.split_sizes['test']} (seed {args.seed}); features handed to JAX "
        f"{'without a copy' if result.zero_copy else 'with a copy'}"
    )
    _print(format_table(result))
    _print(
        f"time: embed {t_embed:.1f}s, head {result.seconds['head']:.1f}s, "
        f"baseline {result.seconds['baseline']:.1f}s, total {total:.1f}s"
    )
    if args.report is not None:
        paths = write_report(
            result,
            args.report,
            spec=emb.metadata.get("spec", ""),
            data=emb.metadata.get("data", ""),
            seconds_total=total,
            seconds_embed=t_embed,
        )
        _print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _dataset_of(emb: Any, args: argparse.Namespace) -> Any:
    """The images behind an embeddings file, for the pixel baseline (None if unavailable)."""
    from .data import load_dataset

    data = args.data if args.data != DEFAULT_DATA else emb.metadata.get("data", DEFAULT_DATA)
    if data != "digits" and not Path(data).exists():
        _print(f"baseline skipped: the embedded data {data!r} is not available")
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


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from ..runtimes.onnx_export import export_onnx
    from .embed import check_output_path

    out = check_output_path(args.out, flag="--out")
    backbone, pre = build_backbone(args.spec, "torch", args.image_size)
    example = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    export_onnx(backbone, out, example, dynamic_batch=True)
    _print(f"wrote {out} (input {tuple(example.shape)}, dynamic batch)")
    return 0

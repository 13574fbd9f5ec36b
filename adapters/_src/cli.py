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

from .data import DataError
from .embed import EmbedError
from .probe import ProbeError

#: what ``probe`` with no arguments runs (the README's main-job command): real ImageNet weights
#: installed with the package, so the first number a newcomer sees is a pretrained model's
DEFAULT_MODEL = "universal/efficientnet_lite0_imagenet"
DEFAULT_DATA = "digits"
SPEC_SUFFIXES = (".yaml", ".yml", ".json", ".onnx")
RUNTIMES = ("torch", "onnxruntime")


class CliError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


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


# ---------------------------------------------------------------------------------------------
# shared steps
# ---------------------------------------------------------------------------------------------


def resolve_spec(arg: str, device: str | None = None) -> Any:
    """A spec file (ours, eva's, or an .onnx model) or a registry name -> a spec record.

    A bare ``.onnx`` file runs on ``device``'s kind (``cpu`` or ``cuda``; default ``cpu``).
    """
    import specs

    path = Path(arg)
    if path.is_file():
        if path.suffix == ".onnx":
            kind = "cpu" if device is None else _device_kind(device)
            return specs.OnnxSpec(path=str(path), device=kind)
        return specs.load(path)
    if path.suffix in SPEC_SUFFIXES or path.is_dir():
        raise CliError(
            f"SPEC: expected a spec file or a registry name, got {arg!r}, which is not a file; "
            "check the path, or run 'python -m adapters list' for registry names"
        )
    return specs.RegistrySpec(model_name=arg)


def _device_kind(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` of a ``--device`` value (a `BuildError` if it is not one)."""
    from .build import normalize_device

    return normalize_device(device).partition(":")[0]


def _is_onnx(spec: Any) -> bool:
    import specs

    if isinstance(spec, specs.RegistrySpec):
        from .registry import registry_spec

        try:
            spec = registry_spec(spec.model_name, spec.model_kwargs)
        except (ValueError, LookupError):
            return False  # build reports the unknown name
    return isinstance(spec, specs.OnnxSpec)


def choose_device(spec: Any, runtime: str, device: str | None) -> str | None:
    """The device to build on: ``--device`` if given; else None (the spec decides) for ONNX
    models and the ONNX Runtime fast path, and for torch and Flax ``cuda`` when torch sees a
    GPU, else ``cpu``."""
    if device is not None:
        return device
    if runtime != "torch" or _is_onnx(spec):
        return None
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_backbone(
    arg: str,
    runtime: str,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int = 0,
    device: str | None = None,
) -> tuple[Any, Any]:
    """Build the backbone named by ``arg`` on ``device`` (see `choose_device`); returns it
    with its resolved `Preprocess`.

    With ``runtime="onnxruntime"`` the torch backbone is built first to learn its input
    (size, channels), which is the example the ONNX export traces; that backbone is then served.
    """
    import torch

    import adapters

    from .embed import resolve_preprocess

    spec = resolve_spec(arg, device)
    device = choose_device(spec, runtime, device)
    # random-weight backbones (``*_random``, ``pretrained: false``) come out the same every run
    torch.manual_seed(seed)
    if runtime != "torch" and device is not None and _device_kind(device) != "cpu":
        raise CliError(
            f"--device: --runtime {runtime} serves the backbone on the CPU, got --device "
            f"{device}; drop --device, or use --runtime torch to run on {device}"
        )
    backbone = adapters.build(spec, device=device)
    pre = resolve_preprocess(backbone, image_size=image_size, mean=mean, std=std)
    if runtime != "torch":
        from .ort_runtime import serve_with_onnxruntime

        # serve the module just built (what build(runtime=...) does after loading it again)
        backbone = serve_with_onnxruntime(backbone, torch.zeros(1, pre.channels, *pre.size))
    return backbone, pre


def _print(*parts: Any) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    import adapters

    for name in adapters.list_models(args.pattern):
        _print(name)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import torch

    from .embed import input_device, spec_yaml

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
    _print(f"output kind: {info.get('output_kind', _kind(y))}")
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
    from .weights import describe_weights

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
        _print(f"weights: {describe_weights(backbone, args.seed)}")
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

    import adapters

    from .embed import check_output_path

    out = check_output_path(args.out, flag="--out")
    backbone, pre = build_backbone(args.spec, "torch", args.image_size)
    example = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    adapters.export_onnx(backbone, out, example, dynamic_batch=True)
    _print(f"wrote {out} (input {tuple(example.shape)}, dynamic batch)")
    return 0

"""The ``python -m adapters`` command line's flags: one parser, its defaults and its help."""

from __future__ import annotations

import argparse

#: what ``probe`` with no arguments runs (the README's main-job command)
DEFAULT_MODEL = "universal/vit_tiny_patch16_224_random"
DEFAULT_DATA = "digits"
RUNTIMES = ("torch", "onnxruntime", "jax")
ENGINES = ("process", "ray")
#: flags that only --engine ray reads
RAY_FLAGS = ("address", "num_workers", "gpus_per_worker")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m adapters`` argument parser; ``args.command`` names the command."""
    parser = argparse.ArgumentParser(
        prog="python -m adapters",
        description="Functional adapters for vision foundation-model backbones.",
    )
    parser.set_defaults(command=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("list", help="registry names, one a line")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard pattern (default: all)")
    p.set_defaults(command="list")

    p = sub.add_parser("inspect", help="build a backbone, run one example input, describe it")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_backbone_flags(p)
    p.set_defaults(command="inspect")

    p = sub.add_parser("embed", help="embed a dataset into a .safetensors file")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_data_flags(p, required=True)
    p.add_argument(
        "--out", required=True, help="output .safetensors file (--engine ray: a directory)"
    )
    _add_backbone_flags(p)
    _add_engine_flags(p)
    p.set_defaults(command="embed")

    p = sub.add_parser("probe", help="train a JAX/Flax head on embeddings; report test metrics")
    p.add_argument(
        "spec",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"spec, registry name, an embeddings .safetensors or an 'embed --engine ray' "
        f"directory (default: {DEFAULT_MODEL})",
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
    p.set_defaults(command="probe")

    p = sub.add_parser("export", help="export a backbone to ONNX")
    p.add_argument("spec", help="spec file or registry name")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--image-size", type=int, help="example input size (default: the backbone's)")
    p.set_defaults(command="export", runtime="torch", mean=None, std=None)
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


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="process",
        help="process: this process (default); ray: Ray Data actors writing a sharded, "
        "resumable directory (needs the 'distributed' extra)",
    )
    p.add_argument("--address", help="--engine ray: the Ray cluster to join (default: local)")
    p.add_argument("--num-workers", type=int, help="--engine ray: actors (default: per GPU)")
    p.add_argument(
        "--gpus-per-worker", type=float, help="--engine ray: GPUs each actor holds (default 0)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="Ray's own logs and bars")


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

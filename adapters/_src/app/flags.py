"""The flags several commands share (the backbone's, the data's) and the default job that
``embed`` and ``probe`` run without arguments."""

from __future__ import annotations

import argparse

from ..runtimes.table import RUNTIMES as RUNTIME_TABLE
from . import flag_types

#: what ``probe`` with no arguments runs (the README's main-job command): real ImageNet weights
#: installed with the package, so the first number a newcomer sees is a pretrained model's
DEFAULT_MODEL = "universal/efficientnet_lite0_imagenet"
DEFAULT_DATA = "digits"
#: the input size of that default job: digits are 8x8 images, so a larger input adds compute,
#: not detail (its scores: benchmarks/results/main_job.json)
DEFAULT_IMAGE_SIZE = 112
RUNTIMES = tuple(RUNTIME_TABLE)


def image_size(args: argparse.Namespace) -> int | None:
    """``--image-size``, else the default job's own size when embed or probe runs that job."""
    if args.image_size is None and (args.spec, args.data) == (DEFAULT_MODEL, DEFAULT_DATA):
        return DEFAULT_IMAGE_SIZE
    return args.image_size


def add_job_spec(p: argparse.ArgumentParser, help: str) -> None:
    """The optional ``SPEC`` of a command that runs the default job without one."""
    p.add_argument("spec", nargs="?", default=DEFAULT_MODEL, help=help)


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--labels``, ``--limit``, ``--batch-size``, ``--strict-images``."""
    p.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help="'digits', an image folder (one sub-folder per class) or a .npz/.npy of images",
    )
    p.add_argument("--labels", help="a .npy of labels for a .npy of images")
    p.add_argument(
        "--limit",
        type=flag_types.positive_int,
        help="a fixed-seed random subset of this many images (of an embeddings file given to "
        "probe: its first N rows)",
    )
    p.add_argument(
        "--batch-size", type=flag_types.positive_int, default=64, help="images per forward call"
    )
    p.add_argument(
        "--strict-images", action="store_true", help="fail on an unreadable image (default: skip)"
    )


def add_backbone_flags(p: argparse.ArgumentParser) -> None:
    """``--image-size``, ``--mean``, ``--std``, ``--runtime``, ``--device``."""
    p.add_argument(
        "--image-size",
        type=flag_types.positive_int,
        help=f"input size (default: the backbone's own; {DEFAULT_IMAGE_SIZE} for the default "
        f"job, {DEFAULT_MODEL} on {DEFAULT_DATA})",
    )
    p.add_argument(
        "--mean",
        type=flag_types.finite_float,
        nargs="+",
        help="per-channel mean (default: the backbone's)",
    )
    p.add_argument(
        "--std",
        type=flag_types.positive_float,
        nargs="+",
        help="per-channel std (default: the backbone's)",
    )
    p.add_argument(
        "--runtime", choices=RUNTIMES, default="torch", help="what runs the backbone's forward"
    )
    p.add_argument(
        "--device",
        help="where the backbone runs: cpu, cuda or cuda:N (default: cuda if available, else "
        "cpu; an ONNX model: its spec's device)",
    )

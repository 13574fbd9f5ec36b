"""``embed``: a dataset through a backbone into a ``.safetensors`` file, in this process, or
with ``--engine ray`` as a Ray Data job writing a sharded, resumable directory (`app.ray`)."""

from __future__ import annotations

import argparse

from .. import flag_types
from ..data.datasets import load_dataset
from ..describe import say
from ..errors import CliError
from ..flags import DEFAULT_MODEL, add_backbone_flags, add_data_flags, add_job_spec, image_size
from ..job import embed, load_backbone
from ..out_dtypes import OUT_DTYPES
from ..out_paths import check_out, check_out_format
from ..store import save_embeddings, stored_as

HELP = "embed a dataset into a .safetensors file"
EXAMPLES = (
    "{prog} embed universal/efficientnet_lite0_imagenet --data digits --out emb.safetensors\n"
    "  {prog} embed spec.yaml --data images/ --out emb.safetensors --batch-size 32"
)
ENGINES = ("process", "ray")
#: flags that only --engine ray reads
RAY_FLAGS = ("address", "num_workers", "gpus_per_worker")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``SPEC``, the data's flags, ``--out``, the backbone's flags and the engine's."""
    add_job_spec(
        p,
        f"spec file (YAML/JSON, eva config, .onnx) or registry name (default: {DEFAULT_MODEL}, "
        "as probe)",
    )
    add_data_flags(p)
    p.add_argument(
        "--out", required=True, help="output .safetensors file (--engine ray: a directory)"
    )
    add_backbone_flags(p)
    p.add_argument(
        "--out-dtype",
        choices=OUT_DTYPES,
        default="float32",
        help="the stored embeddings' dtype: float16 halves the file (read back as float32)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="process",
        help="process: this process (default); ray: Ray Data actors writing a sharded, "
        "resumable directory (needs the 'distributed' extra)",
    )
    p.add_argument("--address", help="--engine ray: the Ray cluster to join (default: local)")
    p.add_argument(
        "--num-workers",
        type=flag_types.positive_int,
        help="--engine ray: actors (default: per GPU)",
    )
    p.add_argument(
        "--gpus-per-worker",
        type=flag_types.non_negative_float,
        help="--engine ray: GPUs each actor holds (default 0)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="Ray's own logs and bars")


def run(args: argparse.Namespace) -> int:
    """Check ``--out`` against the engine and the inputs, then embed and write it."""
    # the first line comes before any framework import (torch alone takes seconds)
    ray = " (--engine ray)" if args.engine == "ray" else ""
    say(f"embed {args.spec} on {args.data} -> {args.out}{ray}")
    if args.engine == "ray":
        if args.workers is not None:
            raise CliError(
                f"--workers: the process engine's decoding threads; with --engine ray, Ray's "
                f"tasks decode; drop --workers (--num-workers sets the actors), got "
                f"--workers {args.workers}"
            )
        check_out_format(args.out, "ray")
        if args.device is not None:
            raise CliError(
                f"--device: with --engine ray each worker's device follows --gpus-per-worker, "
                f"got --device {args.device}; drop --device"
            )
        args.gpus_per_worker = args.gpus_per_worker or 0
        from ..ray.command import embed_ray

        return embed_ray(args, image_size=image_size(args))
    given = [f"--{f.replace('_', '-')}" for f in RAY_FLAGS if getattr(args, f) is not None]
    if given:
        raise CliError(f"{given[0]}: only read with --engine ray; add --engine ray or drop it")
    out = check_out(args, data=args.data, labels=args.labels)
    check_out_format(args.out, "process")  # after: naming an input is the worse mistake
    ds = load_dataset(args.data, labels=args.labels, limit=args.limit)
    backbone, pre = load_backbone(args, image_size(args), images=len(ds))
    emb = embed(args, backbone, pre, ds)
    save_embeddings(stored_as(emb, args.out_dtype), out)
    say(f"wrote {out}")
    return 0

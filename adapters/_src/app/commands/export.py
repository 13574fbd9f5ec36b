"""``export``: build a backbone and write it as an ONNX file that carries its preprocessing,
saying each phase (loading, checking the input, tracing and writing) as it starts."""

from __future__ import annotations

import argparse
import json

from .. import flag_types
from ..backbone import build_backbone, run_forward
from ..describe import describe_parameters, say
from ..out_paths import check_out

HELP = "export a backbone to ONNX"
EXAMPLES = "{prog} export universal/vit_tiny_patch16_224_random --out model.onnx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``SPEC``, ``--out`` (an ``.onnx`` name) and ``--image-size``."""
    p.add_argument("spec", help="spec file or registry name")
    p.add_argument(
        "--out", required=True, type=flag_types.file_with_suffix(".onnx"), help="output .onnx file"
    )
    p.add_argument(
        "--image-size",
        type=flag_types.positive_int,
        help="example input size (default: the backbone's)",
    )
    p.set_defaults(runtime="torch", mean=None, std=None)


def run(args: argparse.Namespace) -> int:
    """``python -m adapters export SPEC --out model.onnx [--image-size N]``."""
    say(f"loading backbone {args.spec} ...")
    out = check_out(args)
    import torch

    from ...runtimes.onnxruntime.export import export_onnx
    from ...sources.onnx.metadata import METADATA_PREPROCESS

    backbone, pre = build_backbone(args.spec, "torch", args.image_size)
    say(f"backbone: {describe_parameters(backbone)} ({backbone.framework})")
    example = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():  # an input the backbone cannot take: one line, not a trace
        run_forward(backbone, example)
    say(
        f"exporting to ONNX with torch.export (input {tuple(example.shape)}, dynamic batch; "
        "tracing a large backbone takes a minute or more) ..."
    )
    # the preprocessing travels with the model: 'embed model.onnx' reads it back
    metadata = {METADATA_PREPROCESS: json.dumps(pre.as_dict())}
    export_onnx(backbone, out, example, dynamic_batch=True, metadata=metadata)
    say(f"wrote {out} (input {tuple(example.shape)}, dynamic batch)")
    return 0

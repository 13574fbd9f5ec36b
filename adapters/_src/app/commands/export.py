"""``export``: build a backbone and write it as an ONNX file that carries its preprocessing,
saying each phase (loading, checking the input, tracing and writing) as it starts."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _print(*parts: Any) -> None:
    print(*parts, flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    """``python -m adapters export SPEC --out model.onnx [--image-size N]``."""
    _print(f"loading backbone {args.spec} ...")
    from .out_paths import check_out

    out = check_out(args)
    import torch

    from ..runtimes.onnxruntime.export import export_onnx
    from ..sources.onnx.metadata import METADATA_PREPROCESS
    from .backbone import build_backbone
    from .describe import describe_parameters
    from .embed import run_forward

    backbone, pre = build_backbone(args.spec, "torch", args.image_size)
    _print(f"backbone: {describe_parameters(backbone)} ({backbone.framework})")
    example = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():  # an input the backbone cannot take: one line, not a trace
        run_forward(backbone, example)
    _print(
        f"exporting to ONNX with torch.export (input {tuple(example.shape)}, dynamic batch; "
        "tracing a large backbone takes a minute or more) ..."
    )
    # the preprocessing travels with the model: 'embed model.onnx' reads it back
    metadata = {METADATA_PREPROCESS: json.dumps(pre.as_dict())}
    export_onnx(backbone, out, example, dynamic_batch=True, metadata=metadata)
    _print(f"wrote {out} (input {tuple(example.shape)}, dynamic batch)")
    return 0

"""``inspect``: build a backbone, run one example input through it, and describe both."""

from __future__ import annotations

import argparse
from typing import Any

import specs

from ...devices import input_device
from ...registry import registry_spec
from ..backbone import build_backbone, resolve_spec, run_forward
from ..describe import count_parameters, logits_note, say
from ..flags import add_backbone_flags
from ..weights import describe_weights

HELP = "build a backbone, run one example input, describe it"
EXAMPLES = (
    "{prog} inspect universal/vit_tiny_patch16_224_random\n"
    "  {prog} inspect timm/resnet18 --image-size 160\n  {prog} inspect model.onnx"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``SPEC`` and the backbone's flags."""
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    add_backbone_flags(p)


def run(args: argparse.Namespace) -> int:
    """Build ``args.spec``, run a seeded random input through it, and print what it is."""
    say(f"loading backbone {args.spec} ...")  # before torch's import: it takes seconds
    import torch

    try:
        backbone, pre = build_backbone(
            args.spec,
            args.runtime,
            args.image_size,
            args.mean,
            args.std,
            device=args.device,
            say=say,
        )
    except Exception:
        _print_named_spec(args.spec)  # what a name stands for is worth seeing most when it fails
        raise
    x = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    x = x.to(input_device(backbone) or "cpu")
    with torch.inference_mode():
        y = run_forward(backbone, x)
    info = dict(backbone.info or {})
    note = logits_note(backbone)
    say(f"source:      {specs.source_of(backbone.spec)}")
    say(f"framework:   {backbone.framework}")
    say(f"device:      {info.get('device') or 'cpu'}")
    say(f"input:       {tuple(x.shape)} float32 ({pre.describe()})")
    say(f"weights:     {describe_weights(backbone, seed=0)}")
    say(f"output kind: {'classifier logits (B, classes)' if note else _kind(y)}")
    say(f"output:      {_shape_dtype(y)}")
    count, size, what = count_parameters(backbone)  # an ONNX model: its initializers
    say(f"{what + ':':<12} {count:,} ({size / 2**20:.2f} MiB)")
    transforms = getattr(backbone.spec, "transforms", ())
    say(f"transforms:  {', '.join(type(t).__name__ for t in transforms) or 'none'}")
    say("spec:")
    for line in specs.dumps(backbone.spec, redact=True).rstrip().splitlines():
        say(f"  {line}")
    if note:
        say(f"note: {note}")
    return 0


def _print_named_spec(arg: str) -> None:
    """Print the spec a registry name stands for (nothing for a file or an unknown name)."""
    try:
        spec = resolve_spec(arg)
        if not isinstance(spec, specs.RegistrySpec):
            return
        text = specs.dumps(registry_spec(spec.model_name, spec.model_kwargs), redact=True)
    except Exception:  # the build's own error, printed next, says what is wrong with the name
        return
    say(f"{arg} stands for this spec:")
    for line in text.rstrip().splitlines():
        say(f"  {line}")


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

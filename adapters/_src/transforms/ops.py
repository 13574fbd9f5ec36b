"""Array-framework dispatch for `adapters.transforms`: torch, JAX and NumPy, never converted.

Each helper looks at the array's own type and calls that framework's function, so a torch
tensor stays a torch tensor (on its device) and a JAX tracer stays a tracer under ``jax.jit``.
torch and jax are never imported here: an array of theirs can only exist once its framework is
in ``sys.modules``, so looking there is enough (and keeps ``import adapters.transforms`` cheap).
Inputs are checked before they get here, in ``checks.py``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

#: what the transforms accept, for error messages
ARRAY_KINDS = "a torch.Tensor, jax.Array or numpy.ndarray"


def framework_of(x: Any) -> str | None:
    """``"torch"``, ``"jax"`` or ``"numpy"`` for an array of that framework, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        return "jax"
    if isinstance(x, np.ndarray):
        return "numpy"
    return None


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape as a plain tuple (``torch.Size`` prints as ``torch.Size([...])``)."""
    return tuple(x.shape)


def concat(xs: list[Any], axis: int, fw: str) -> Any:
    """Concatenate same-framework arrays along ``axis``."""
    if fw == "torch":
        return sys.modules["torch"].cat(xs, dim=axis)
    if fw == "jax":
        return sys.modules["jax"].numpy.concatenate(xs, axis=axis)
    return np.concatenate(xs, axis=axis)


def channels_first(x: Any, fw: str) -> Any:
    """(batch, tokens, dim) -> (batch, dim, tokens), a view where the framework allows."""
    if fw == "torch":
        return x.permute(0, 2, 1)
    return x.transpose(0, 2, 1)


def argmax(x: Any, axis: int, keepdims: bool, fw: str) -> Any:
    """Index of the maximum along ``axis`` (integer dtype of the framework)."""
    if fw == "torch":
        return sys.modules["torch"].argmax(x, dim=axis, keepdim=keepdims)
    if fw == "jax":
        return sys.modules["jax"].numpy.argmax(x, axis=axis, keepdims=keepdims)
    return np.argmax(x, axis=axis, keepdims=keepdims)


def one_hot(labels: Any, num_classes: int, axis: int, fw: str) -> Any:
    """Labels with a size-1 ``axis`` -> one-hot integers with ``num_classes`` there.

    Labels are truncated to integers first (eva: ``tensor.long()``). A label outside
    [0, num_classes) gives an all-zero row (eager torch ``scatter_`` would raise instead;
    under ``jax.jit`` values cannot be checked).
    """
    shape = [1] * labels.ndim
    shape[axis] = num_classes
    if fw == "torch":
        torch = sys.modules["torch"]
        classes = torch.arange(num_classes, device=labels.device).reshape(shape)
        return (labels.long() == classes).long()
    xp = sys.modules["jax"].numpy if fw == "jax" else np
    classes = xp.arange(num_classes).reshape(shape)
    return (labels.astype(int) == classes).astype(int)


def l2_normalize(x: Any, axis: int, eps: float, fw: str) -> Any:
    """``x / max(||x||_2, eps)`` along ``axis``, as ``torch.nn.functional.normalize``."""
    if fw == "torch":
        torch = sys.modules["torch"]
        norm = torch.linalg.vector_norm(x, ord=2, dim=axis, keepdim=True)
        return x / norm.clamp_min(eps)
    xp = sys.modules["jax"].numpy if fw == "jax" else np
    norm = xp.linalg.norm(x, ord=2, axis=axis, keepdims=True)
    return x / xp.maximum(norm, eps)

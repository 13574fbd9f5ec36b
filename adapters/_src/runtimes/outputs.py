"""Model outputs as named leaves and back: how a runtime's flat outputs (an ONNX file's, a
lowered function's) map onto the adapter's (possibly nested) output; also `parity`'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

#: a JSON-able description of an output's nesting: None for a tensor, else
#: {"list": [...]}, {"tuple": [...]} or {"dict": [[key, child], ...]}
Structure = Any


def flatten(y: Any, prefix: str = "output") -> tuple[list[str], list[Any], Structure]:
    """Leaves of a (nested) tensor / tuple / list / dict output, their names, and its nesting.

    Dicts keep their insertion order (as ``torch.onnx`` flattens them); ``None`` values of a
    dict (e.g. unset ``transformers`` output fields) are dropped.

    Raises:
        TypeError: a leaf that is not an array (names where it is).
    """
    names: list[str] = []
    leaves: list[Any] = []

    def walk(node: Any, name: str, top: bool) -> Structure:
        if isinstance(node, Mapping):
            items = [(str(k), v) for k, v in node.items() if v is not None]
            return {"dict": [[k, walk(v, k if top else f"{name}.{k}", False)] for k, v in items]}
        if isinstance(node, (list, tuple)):
            kind = "list" if isinstance(node, list) else "tuple"
            sep = "_" if top else "."
            return {kind: [walk(v, f"{name}{sep}{i}", False) for i, v in enumerate(node)]}
        if interop_array(node):
            names.append(name)
            leaves.append(node)
            return None
        raise TypeError(
            f"{name}: expected arrays (or tuples / lists / dicts of them), got "
            f"{type(node).__module__}.{type(node).__qualname__}; it cannot be an ONNX output."
        )

    structure = walk(y, prefix, True)
    return names, leaves, structure


def interop_array(x: Any) -> bool:
    """Whether ``x`` is an array leaf (torch, JAX, NumPy, OrtValue or any DLPack object)."""
    return isinstance(x, (torch.Tensor, np.ndarray)) or hasattr(x, "__dlpack__")


def unflatten(structure: Structure, leaves: Sequence[Any]) -> Any:
    """Inverse of `flatten`: put ``leaves`` (in order) back into ``structure``."""
    it = iter(leaves)

    def build(node: Structure) -> Any:
        if node is None:
            return next(it)
        ((kind, children),) = node.items()
        if kind == "dict":
            return {key: build(child) for key, child in children}
        seq = [build(child) for child in children]
        return seq if kind == "list" else tuple(seq)

    return build(structure)

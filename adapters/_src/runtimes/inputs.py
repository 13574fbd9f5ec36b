"""A runtime's example input: the default one, as flat named tensors and back, and random
inputs of its shape for a first-build check; shared by every runtime that traces a backbone.

An example is one array ``(batch, ...)``, a tuple of arrays or a dict ``{name: array}`` (torch,
JAX or NumPy), as the adapter's ``forward`` takes it. Flattened (`as_torch_inputs`) its kind is
``"array"``, ``"tuple"`` or ``"dict"`` and its names are ``input``; ``input_0``, ``input_1``,
...; or the dict's keys. `Traceable` is the adapter as a module of those flat tensors, which
is what ``torch.onnx.export`` and the JAX lowering trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

import interop

from ..adapter import Adapter
from ..errors import BuildError
from .outputs import flatten, interop_array


def default_example(adapter: Any, example_input: Any, runtime: str) -> Any:
    """``example_input``, or zeros of the adapter's declared ``input_shape``.

    Anything but an `Adapter` is returned as given, for the runtime's own type check to name.

    Raises:
        BuildError: neither is known.
    """
    if example_input is not None or not isinstance(adapter, Adapter):
        return example_input
    shape = adapter.info.get("input_shape")
    if shape is None:
        raise BuildError(
            "example_input",
            f"serving with {runtime} needs an example input, and this model does not declare "
            "its input shape",
            fix="Pass example_input=torch.randn(1, 3, 224, 224) (your input shape)",
        )
    return torch.zeros(tuple(shape))


def as_torch_inputs(example_input: Any) -> tuple[str, list[str], list[torch.Tensor]]:
    """The example's kind, names and tensors (private contiguous copies: a trace may keep them).

    Raises:
        TypeError: a leaf that is not an array (names where it is).
    """

    def one(a: Any, where: str) -> torch.Tensor:
        if not interop_array(a):
            raise TypeError(
                f"export_onnx: example_input{where}: expected a torch.Tensor, jax.Array or "
                f"numpy.ndarray, got {type(a).__name__}. Pass an array of the input's shape, "
                "e.g. torch.randn(2, 3, 224, 224)."
            )
        return interop.to_torch(a, copy=True)

    if isinstance(example_input, Mapping):
        names = [str(k) for k in example_input]
        tensors = [one(v, f"[{k!r}]") for k, v in example_input.items()]
        return "dict", names, tensors
    if isinstance(example_input, (tuple, list)):
        tensors = [one(v, f"[{i}]") for i, v in enumerate(example_input)]
        return "tuple", [f"input_{i}" for i in range(len(tensors))], tensors
    return "array", ["input"], [one(example_input, "")]


def restructure(kind: str, names: Sequence[str], tensors: Sequence[Any]) -> Any:
    """Inverse of `as_torch_inputs`: flat tensors back into the example's own structure."""
    if kind == "dict":
        return dict(zip(names, tensors, strict=True))
    if kind == "tuple":
        return tuple(tensors)
    return tensors[0]


def batch_of_two(names: Sequence[str], tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The example inputs with a batch axis of at least 2 (torch.export specialises axes of
    size 0 or 1, so a batch of 1 would be fixed in the graph).

    Raises:
        ValueError: an input is a scalar (it has no batch axis).
    """
    for name, t in zip(names, tensors, strict=True):
        if t.ndim == 0:
            raise ValueError(
                f"export_onnx: input {name!r} is a scalar, so it has no batch axis. Pass "
                "dynamic_batch=False, or give it a leading batch axis."
            )
    return [t if t.shape[0] >= 2 else t.expand(2, *t.shape[1:]).clone() for t in tensors]


def check_inputs(example_input: Any) -> Any:
    """Random inputs shaped like the example, batch at least 2, for a first-build check (a zero
    example would hide most errors); integer inputs are kept as given."""
    gen = torch.Generator().manual_seed(0)

    def one(a: Any) -> Any:
        t = interop.to_torch(a, copy=True)
        if t.is_floating_point():
            batch = max(int(t.shape[0]), 2) if t.ndim else None
            shape = (batch, *t.shape[1:]) if batch else ()
            return torch.randn(shape, generator=gen, dtype=t.dtype)
        return t

    if isinstance(example_input, Mapping):
        return {k: one(v) for k, v in example_input.items()}
    if isinstance(example_input, (list, tuple)):
        return tuple(one(v) for v in example_input)
    return one(example_input)


class Traceable(torch.nn.Module):
    """``adapter.forward(adapter.params, x)`` as a module taking flat tensors, returning flat
    tensors (the adapter's module is a submodule, so its weights export as initialisers and
    lower under ``inner.<name>``)."""

    def __init__(self, adapter: Adapter, kind: str, names: Sequence[str]) -> None:
        super().__init__()
        if isinstance(adapter.module, torch.nn.Module):
            self.inner = adapter.module
        self._adapter = adapter
        self._kind = kind
        self._names = list(names)

    def forward(self, *args: torch.Tensor) -> tuple[Any, ...]:
        y = self._adapter.forward(self._adapter.params, restructure(self._kind, self._names, args))
        return tuple(flatten(y)[1])

"""`parity`: how far two adapters' outputs are apart on the same inputs (a runtime's
first-build check against the torch adapter)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import torch

import interop

from ..adapter import Adapter
from .outputs import flatten


@attrs.frozen
class OutputDiff:
    """Differences on one output: ``max_abs = max|a - b|``, ``max_rel = max_abs / max|b|``."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    scale: float


@attrs.frozen
class ParityReport:
    """How far adapter ``a``'s outputs are from adapter ``b``'s (the reference) on the same
    inputs. ``max_rel`` is relative to the reference's largest magnitude (elementwise ratios
    explode near zero).

    Attributes:
        max_abs: largest ``|a - b|`` over every output and input.
        max_rel: largest per-output ``max|a - b| / max|b|``.
        outputs: one `OutputDiff` per output leaf (worst over the inputs).
        n_inputs: how many inputs were compared.
    """

    max_abs: float
    max_rel: float
    outputs: tuple[OutputDiff, ...]
    n_inputs: int

    def ok(self, atol: float = 1e-4, rtol: float = 1e-4) -> bool:
        """Every output within ``atol + rtol * max|b|`` of the reference."""
        return all(o.max_abs <= atol + rtol * o.scale for o in self.outputs)

    def __str__(self) -> str:
        rows = ", ".join(f"{o.name}{list(o.shape)}: {o.max_abs:.3g}" for o in self.outputs)
        return (
            f"max abs diff {self.max_abs:.3g}, max rel diff {self.max_rel:.3g} over "
            f"{self.n_inputs} input(s) ({rows})"
        )


def parity(a: Adapter, b: Adapter, inputs: Any) -> ParityReport:
    """Compare two adapters on the same inputs; ``b`` is the reference.

    Args:
        a, b: any two adapters taking the same inputs (e.g. an ONNX export and its torch
            source); their outputs must have the same structure and shapes.
        inputs: one input (an array, a tuple or a dict, as ``forward`` takes it), or a
            ``list`` of such inputs (compared one by one).

    Returns:
        A `ParityReport` (``report.ok(atol, rtol)`` tells whether it passes).

    Raises:
        ValueError: the outputs differ in structure or shape.
    """
    batches = inputs if isinstance(inputs, list) else [inputs]
    if not batches:
        raise ValueError("parity: inputs is an empty list; pass at least one input.")
    worst: dict[str, list[float]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for i, x in enumerate(batches):
        with torch.no_grad():
            ya, yb = a(x), b(x)
        # compared leaf by leaf: an ONNX model returns a flat tuple where torch may nest
        names_a, leaves_a, _ = flatten(ya)
        names_b, leaves_b, _ = flatten(yb)
        if len(leaves_a) != len(leaves_b):
            raise ValueError(
                f"parity: on input {i} the adapters give different numbers of outputs: a gives "
                f"{names_a}, b gives {names_b}."
            )
        for name, la, lb in zip(names_b, leaves_a, leaves_b, strict=True):
            na = np.asarray(interop.to_numpy(la), dtype=np.float64)
            nb = np.asarray(interop.to_numpy(lb), dtype=np.float64)
            if na.shape != nb.shape:
                raise ValueError(
                    f"parity: on input {i}, output {name!r} has shape {list(na.shape)} from a "
                    f"but {list(nb.shape)} from b."
                )
            diff = float(np.max(np.abs(na - nb))) if na.size else 0.0
            scale = float(np.max(np.abs(nb))) if nb.size else 0.0
            if math.isnan(diff):
                diff = math.inf
            prev = worst.get(name, [0.0, 0.0])
            worst[name] = [max(prev[0], diff), max(prev[1], scale)]
            shapes[name] = tuple(nb.shape)
    outputs = tuple(
        OutputDiff(
            name=name,
            shape=shapes[name],
            max_abs=d,
            max_rel=d / s if s > 0 else (0.0 if d == 0 else math.inf),
            scale=s,
        )
        for name, (d, s) in worst.items()
    )
    return ParityReport(
        max_abs=max(o.max_abs for o in outputs),
        max_rel=max(o.max_rel for o in outputs),
        outputs=outputs,
        n_inputs=len(batches),
    )

"""Per-call cost of ``interop.jax_function``: a tiny model, and ViT-S/16 at batch 16.

Rows: ``jax.jit(jax_function(adapter))`` against the direct torch call (``torch.no_grad``)
on the same input; ratio - 1 is the relative overhead (goal for ViT-S/16: under 5%); and, on
the tiny model, ``callback="buffer"`` against ``callback="host"`` (outputs checked first).

Run: ``python -m benchmarks.jax_function [--full]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import timm
import torch

import interop
from adapters._src.adapter import Adapter
from benchmarks._timing import interleaved, ratio_row


def _adapter(module: torch.nn.Module) -> Adapter:
    module = module.eval()
    params = {k: v.detach() for k, v in module.state_dict().items()}

    def forward(p: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, p, (x,))

    return Adapter(forward=forward, params=params, spec=None, framework="torch", module=module)


def _case(
    name: str, module: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int = 2
) -> dict:
    adapter = _adapter(module)
    f = jax.jit(interop.jax_function(adapter))
    params, xj = interop.jax_params(adapter), interop.to_jax(x, copy=True)

    def direct() -> Any:
        with torch.no_grad():
            return adapter.forward(adapter.params, x)

    timings = interleaved(
        {"jax_function": lambda: f(params, xj).block_until_ready(), "torch": direct},
        repeats=repeats,
        number=1 if x.numel() > 10_000 else 50,
        warmup=warmup,
    )
    row = ratio_row(name, timings, "jax_function", "torch")
    row["overhead_s"] = row["ours_s"] - row["baseline_s"]
    return row


def _callbacks(module: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict:
    """``callback="buffer"`` (XLA's own buffers) against ``callback="host"`` (pure_callback)."""
    adapter = _adapter(module)
    params, xj = interop.jax_params(adapter), interop.to_jax(x, copy=True)
    fns = {}
    for callback in ("buffer", "host"):
        f = jax.jit(interop.jax_function(adapter, callback=callback))
        np.testing.assert_allclose(
            np.asarray(f(params, xj)),
            adapter.forward(adapter.params, x).detach().numpy(),
            rtol=1e-6,
        )
        fns[f'callback="{callback}"'] = lambda f=f: f(params, xj).block_until_ready()
    timings = interleaved(fns, repeats=repeats, number=50, warmup=2)
    return ratio_row(
        "jax_function buffer vs host callback, tiny Linear(8,8) batch 4",
        timings,
        'callback="buffer"',
        'callback="host"',
    )


def run(quick: bool = True) -> Iterator[dict]:
    """Rows: the tiny Linear (absolute per-call cost), its two callbacks, and ViT-S/16
    batch 16 (relative)."""
    torch.manual_seed(0)
    linear, x = torch.nn.Linear(8, 8), torch.randn(4, 8)
    yield _case("jax_function tiny Linear(8,8) batch 4", linear, x, 7)
    yield _callbacks(linear, x, 7 if quick else 15)
    vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    yield _case(
        "jax_function ViT-S/16 batch 16",
        vit,
        torch.randn(16, 3, 224, 224),
        repeats=2 if quick else 7,
        warmup=1 if quick else 2,
    )


if __name__ == "__main__":
    import sys

    for r in run(quick="--full" not in sys.argv):
        print(
            f"{r['case']:64s} {r['ours']} {r['ours_s']:.3e}s {r['baseline']} "
            f"{r['baseline_s']:.3e}s ratio {r['ratio']:.3f} spread {r['spread']:.2f}"
        )

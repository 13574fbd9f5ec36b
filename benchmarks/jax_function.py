"""Per-call cost of ``interop.jax_function``: a tiny model, and ViT-S/16 at batch 16.

Rows: ``jax.jit(jax_function(adapter))`` against the direct torch call (``torch.no_grad``)
on the same input; ratio - 1 is the relative overhead (goal for ViT-S/16: under 5%).
"""

from __future__ import annotations

from typing import Any

import jax
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


def run(quick: bool = True) -> list[dict]:
    """Rows: the tiny Linear (absolute per-call cost) and ViT-S/16 batch 16 (relative)."""
    torch.manual_seed(0)
    rows = [
        _case("jax_function tiny Linear(8,8) batch 4", torch.nn.Linear(8, 8), torch.randn(4, 8), 7)
    ]
    vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    rows.append(
        _case(
            "jax_function ViT-S/16 batch 16",
            vit,
            torch.randn(16, 3, 224, 224),
            repeats=2 if quick else 7,
            warmup=1 if quick else 2,
        )
    )
    return rows


if __name__ == "__main__":
    for r in run():
        print(
            f"{r['case']:40s} ours {r['ours_s']:.3e}s torch {r['baseline_s']:.3e}s "
            f"ratio {r['ratio']:.3f} overhead {r['overhead_s'] * 1e6:.0f}us spread {r['spread']:.2f}"
        )

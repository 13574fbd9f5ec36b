"""The per-call cost of checking ``params`` in ``forward(params, x)`` (keys and shapes).

``forward`` with a params dict that is not the adapter's own (swapped or fine-tuned weights)
checks that it has exactly the module's keys and shapes before ``functional_call``
(``adapters/_src/params_check.py``). Before that check, this path was the bare
``functional_call`` on the per-thread structural copy, reproduced here as the baseline.

Rows, for timm ViT-tiny and ViT-S/16 (random weights, batch 1, 224x224):

- ``forward(copy, x)`` vs the unchecked ``functional_call`` (the old path): the whole call;
- ``check(params)`` alone vs the unchecked ``functional_call``: the check's share of a call
  (its absolute time is ``ours_s``).

Every row records ``os.getloadavg()`` at the end of its case.

Run: ``python -m benchmarks.params_check [--out benchmarks/results/params_check.json]``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks._timing import interleaved, ratio_row

MODELS = {"vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224"}


def _case(model: str, quick: bool) -> list[dict[str, Any]]:
    import adapters
    import specs
    from adapters._src.params_check import params_checker
    from adapters._src.torch_module import structural_copy

    backbone = adapters.build(
        specs.TimmSpec(MODELS[model], pretrained=False, model_kwargs={"num_classes": 0})
    )
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    copied = {k: v.clone() for k, v in backbone.params.items()}
    replica = structural_copy(backbone.module)
    check = params_checker(backbone.params)

    def unchecked() -> Any:
        with torch.no_grad():
            return torch.func.functional_call(replica, copied, (x,))

    torch.testing.assert_close(backbone.forward(copied, x), unchecked(), rtol=0, atol=0)
    fns = {
        "forward(copy, x)": lambda: backbone.forward(copied, x),
        "unchecked functional_call": unchecked,
    }
    repeats, number = (7, 2) if quick else (15, 3)
    timings = interleaved(fns, repeats=repeats, number=number, warmup=1)
    checks = interleaved(
        {"check(params)": lambda: check(copied)}, repeats=repeats, number=2000, warmup=1
    )
    timings |= checks
    extra = {"suite": "params_check", "source": "timm", "params": len(copied)}
    rows = [
        ratio_row(model, timings, "forward(copy, x)", "unchecked functional_call", **extra),
        ratio_row(model, timings, "check(params)", "unchecked functional_call", **extra),
    ]
    load = os.getloadavg()
    for row in rows:
        row["loadavg"] = load
    return rows


def run(quick: bool = True) -> list[dict[str, Any]]:
    """Rows ``checked / unchecked`` per model (see the module doc)."""
    return [row for model in MODELS for row in _case(model, quick)]


def main(argv: list[str]) -> None:
    rows = run(quick="--full" not in argv)
    for r in rows:
        print(
            f"{r['case']:10} {r['ours']:18} {r['ours_s'] * 1e6:10.1f} us "
            f"{r['baseline_s'] * 1e3:8.2f} ms ratio {r['ratio']:.4f} spread {r['spread']:.2f} "
            f"load {r['loadavg'][0]:.1f}"
        )
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
        out.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

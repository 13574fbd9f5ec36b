"""The JAX runtime's CPU compiler options: the lowered backbones with and without them, and torch.

``python -m benchmarks.lowering_cpu_options [--rounds N] [--models ...]``. For each backbone at
batch 1 and 16, three contenders interleaved in one process, ``--rounds`` times: the lowered
forward under ``jax.jit`` with XLA's defaults ("defaults"), the same compiled with the options
the JAX runtime applies on the CPU (``adapters/_src/runtimes/jax/xla_options.py``, "options"),
and torch eager. Each row records the largest difference of each JAX output from torch's, the
load average and the CPU model. Results: ``benchmarks/results/lowering_speed_cpu_options.
{json,md}``; the md quotes the median over rounds of each time and of each ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import torch

import interop
from adapters._src.runtimes.jax.xla_options import compiler_options
from benchmarks._results import cpu_model
from benchmarks._timing import interleaved

OUT = Path("benchmarks/results")
MODELS = {
    "ResNet-18": "resnet18",
    "EfficientNet-Lite0": "tf_efficientnet_lite0",
    "ViT-S/16": "vit_small_patch16_224",
}


def _case(label: str, name: str, rounds: int, reps: int) -> list[dict[str, Any]]:
    import timm

    torch.manual_seed(0)
    module = timm.create_model(name, pretrained=False, num_classes=0).eval()
    forward, params = interop.lower(module, torch.randn(2, 3, 224, 224))
    options = compiler_options("cpu")
    rows = []
    for batch in (1, 16):
        rows.append(_batch(f"{label} batch {batch}", module, forward, params, options, batch, rounds, reps))  # fmt: skip
        print(json.dumps(rows[-1]["median_ms"]), rows[-1]["case"], flush=True)
    return rows


def _batch(case: str, module, forward, params, options, batch: int, rounds: int, reps: int) -> dict:  # fmt: skip
    x = torch.randn(batch, 3, 224, 224)
    xj = interop.to_jax(x)
    with torch.no_grad():
        want = module(x).numpy()
    tuned = jax.jit(forward, compiler_options=options or None)
    compiled = {
        "defaults": jax.jit(forward).lower(params, xj).compile(),
        "options": tuned.lower(params, xj).compile(),
    }
    diff = {k: float(np.abs(np.asarray(c(params, xj)) - want).max()) for k, c in compiled.items()}

    def torch_eager() -> Any:
        with torch.no_grad():
            return module(x)

    fns = {k: (lambda c=c: jax.block_until_ready(c(params, xj))) for k, c in compiled.items()}
    fns["torch"] = torch_eager
    per_round, loads = [], []
    for _ in range(rounds):
        t = interleaved(fns, repeats=reps, number=3 if batch == 1 else 1, warmup=1)
        per_round.append({k: v["median_s"] for k, v in t.items()})
        loads.append(os.getloadavg()[0])
    return _row(case, per_round, loads, diff, options)


def _row(case: str, per_round: list, loads: list, diff: dict, options: dict) -> dict[str, Any]:
    med = {k: statistics.median(r[k] for r in per_round) * 1e3 for k in per_round[0]}

    def ratio(a: str, b: str) -> float:
        return statistics.median(r[a] / r[b] for r in per_round)

    return {
        "case": case,
        "median_ms": med,
        "rounds_ms": [{k: v * 1e3 for k, v in r.items()} for r in per_round],
        "options_over_defaults": ratio("options", "defaults"),
        "torch_over_options": ratio("torch", "options"),
        "torch_over_defaults": ratio("torch", "defaults"),
        "max_abs_diff_from_torch": diff,
        "xla_options": options,
        "loadavg_1min": loads,
    }


def _write(rows: list[dict], out: Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "jax": jax.__version__}
    meta |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    meta |= {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": command}
    path = out / "lowering_speed_cpu_options.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# The JAX runtime's CPU compiler options: lowered backbones with and without them",
        "",
        f"`{command}`, {meta['date']}, {meta['cpu']}, {meta['cpu_count']} cores (shared), "
        f"jax {meta['jax']}, torch {meta['torch']} ({meta['torch_threads']} threads). "
        "defaults = `jax.jit` of the lowered forward, XLA's defaults; options = the same "
        "compiled with the runtime's CPU options; times are medians over rounds, ratios the "
        "median of each round's ratio (speed vs torch above 1: faster than torch). "
        "diff = max |JAX - torch| on the benchmark input. Where the load exceeds the core "
        "count, torch eager (its OpenMP threads) degrades far more than XLA: read the torch "
        "columns from a quiet run only; options / defaults is the figure that holds.",
        "",
        "| case | defaults ms | options ms | torch ms | options / defaults | speed vs torch (defaults) | speed vs torch (options) | diff defaults / options | load (1 min) per round |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, d = r["median_ms"], r["max_abs_diff_from_torch"]
        lines.append(
            f"| {r['case']} | {m['defaults']:.1f} | {m['options']:.1f} | {m['torch']:.1f} "
            f"| {r['options_over_defaults']:.2f} | {r['torch_over_defaults']:.2f} "
            f"| {r['torch_over_options']:.2f} | {d['defaults']:.1e} / {d['options']:.1e} "
            f"| {', '.join(f'{v:.1f}' for v in r['loadavg_1min'])} |"
        )
    opts = rows[0]["xla_options"] if rows else {}
    lines += ["", f"Options: `{json.dumps(opts)}`."]
    (out / "lowering_speed_cpu_options.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lowering_cpu_options")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5, help="interleaved timings per round")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    a = p.parse_args()
    command = "python -m benchmarks.lowering_cpu_options " + " ".join(
        f"--rounds {a.rounds} --repeats {a.repeats} --models".split() + [repr(m) for m in a.models]
    )
    rows: list[dict] = []
    for label in a.models:
        rows += _case(label, MODELS[label], a.rounds, a.repeats)
        _write(rows, OUT, command)
        jax.clear_caches()


if __name__ == "__main__":
    main()

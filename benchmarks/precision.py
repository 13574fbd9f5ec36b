"""Peak memory and CPU speed of a ViT-L/16-sized backbone at each precision (issue 23 item 5).

The backbone is timm's ``vit_large_patch16_224`` (304 M parameters, 1.2 GB in float32), built
with ``adapters.build(spec, precision=...)`` two ways:

- ``weights: random``: ``pretrained=False``, no checkpoint, at every precision. Random weights
  are made in float32 (seeded) and then cast, so they equal the cast float32 ones: the float32
  model sets the peak at every precision;
- ``weights: safetensors`` / ``pth``: loaded from a float32 checkpoint of those weights (written
  once, in its own process, to a temporary folder), at ``32-true`` and ``bf16-true``: the
  ``-true`` build never holds the float32 model (``adapters/_src/low_memory.py``).

Each row runs in a fresh Python process that reports:

- ``imports_mib``: peak resident set after importing torch, timm and adapters (subtracted);
- ``build_mib``: peak RSS minus that, after the build (the model as built, plus the pages of a
  memory-mapped checkpoint that were read);
- ``peak_mib``: peak RSS minus that, after ``forward`` on a batch at 224 px;
- ``param_mib``: the bytes the adapter's params hold;
- ``forward_ms``: the median of timed ``forward`` calls after one warm-up;
- ``low_memory_load``: ``adapter.info``'s (checkpoint rows).

``ratio`` columns compare with ``32-true`` of the same weights measured in the same run. The
goal of the issue is ``bf16-true`` peak <= 0.55x ``32-true``. On a CPU without bfloat16 /
float16 arithmetic the low-precision compute may be slower than float32: the speed columns say
what this CPU does. Results go to ``benchmarks/results/precision.json`` with the CPU model and
``os.getloadavg()`` before the run and after each row.

Run: ``python -m benchmarks.precision [--batch 2] [--out PATH]`` (needs ~4 GB of RAM and
2.5 GB of temporary disk, several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._results import cpu_model

PRECISIONS = ("32-true", "bf16-true", "16-true", "bf16-mixed", "16-mixed")
#: checkpoint formats measured, each at these precisions
CHECKPOINTS = ("safetensors", "pth")
CHECKPOINT_PRECISIONS = ("32-true", "bf16-true")
MODEL = "vit_large_patch16_224"
OUT = Path(__file__).resolve().parent / "results" / "precision.json"

CHILD = """
import json, resource, statistics, sys, time
import torch, timm
import adapters, specs

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

precision, batch, calls, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
imports = peak_mib()
spec = specs.TimmSpec(
    sys.argv[5], pretrained=False, model_kwargs={"num_classes": 0}, checkpoint_path=path or None
)
backbone = adapters.build(spec, precision=precision)
built = peak_mib()
params = sum(t.numel() * t.element_size() for t in backbone.params.values()) / 2**20
x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    y = backbone(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        backbone(x)
        times.append(time.perf_counter() - start)
print(json.dumps({
    "precision": precision, "imports_mib": imports, "build_mib": built - imports,
    "peak_mib": peak_mib() - imports, "param_mib": params, "out_dtype": str(y.dtype),
    "finite": bool(torch.isfinite(torch.as_tensor(y).float()).all()),
    "forward_ms": 1000 * statistics.median(times),
    "low_memory_load": backbone.info.get("low_memory_load"),
}))
"""

WRITE = """
import sys, timm, torch
from safetensors.torch import save_file
torch.manual_seed(0)
state = timm.create_model(sys.argv[1], num_classes=0).state_dict()
save_file(state, sys.argv[2] + ".safetensors")
torch.save(state, sys.argv[2] + ".pth")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def measure(precision: str, batch: int, calls: int, checkpoint: str = "") -> dict[str, Any]:
    """One precision in a fresh process (its peak RSS is its own); ``checkpoint`` a file."""
    args = [precision, str(batch), str(calls), checkpoint, MODEL]
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=1800,
    )
    weights = Path(checkpoint).suffix.lstrip(".") if checkpoint else "random"
    if run.returncode != 0:
        error = run.stderr.strip().splitlines()[-1][:300]
        return {"precision": precision, "weights": weights, "error": error}
    row = {"weights": weights, **json.loads(run.stdout.strip().splitlines()[-1])}
    row["load"] = list(os.getloadavg())
    return row


def plan(only: list[str], checkpoints: list[str]) -> list[tuple[str, str]]:
    """``(precision, weights)`` of each row, in order: random weights at ``only``, then each
    checkpoint format at `CHECKPOINT_PRECISIONS` (those of them in ``only``)."""
    rows = [(p, "random") for p in only]
    rows += [(p, c) for c in checkpoints for p in CHECKPOINT_PRECISIONS if p in only]
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``*_ratio`` columns: each row against ``32-true`` with the same weights."""
    for r in rows:
        base = next(
            (
                b
                for b in rows
                if b["precision"] == "32-true" and b["weights"] == r["weights"] and "error" not in b
            ),
            None,
        )
        if base is not None and "error" not in r:
            for k in ("build_mib", "peak_mib", "forward_ms"):
                r[f"{k}_ratio"] = round(r[k] / base[k], 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--checkpoints", nargs="*", choices=CHECKPOINTS, default=list(CHECKPOINTS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    load = list(os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory(prefix="precision-bench-") as tmp:
        stem = str(Path(tmp) / "vit_large")
        todo = plan(args.only, args.checkpoints)
        if any(w != "random" for _, w in todo):
            subprocess.run([sys.executable, "-c", WRITE, MODEL, stem], check=True, env=_env())
        for precision, weights in todo:
            path = "" if weights == "random" else f"{stem}.{weights}"
            rows.append(measure(precision, args.batch, args.calls, path))
            print(json.dumps(rows[-1]), flush=True)
    add_ratios(rows)
    meta = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load, "batch": args.batch}
    meta["torch_threads"] = __import__("torch").get_num_threads()
    meta["model"] = MODEL
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory and CPU speed of a ViT-L/16-sized backbone at each precision (issue 23 item 5).

The backbone is timm's ``vit_large_patch16_224`` with random weights (304 M parameters,
1.2 GB in float32), built with ``adapters.build(spec, precision=...)``. Each precision runs in
a fresh Python process that reports:

- ``imports_mib``: peak resident set after importing torch, timm and adapters (subtracted);
- ``build_mib``: peak RSS minus that, after the build (the model as built);
- ``peak_mib``: peak RSS minus that, after ``forward`` on a batch at 224 px;
- ``param_mib``: the bytes the adapter's params hold;
- ``forward_ms``: the median of timed ``forward`` calls after one warm-up.

``ratio`` columns compare with ``32-true`` measured in the same run. The goal of the issue is
``bf16-true`` peak <= 0.55x ``32-true``. On a CPU without bfloat16 / float16 arithmetic the
low-precision compute may be slower than float32: the speed columns say what this CPU does.
Results go to ``benchmarks/results/precision.json`` with the CPU model and
``os.getloadavg()``.

Run: ``python -m benchmarks.precision [--batch 2] [--out PATH]`` (needs ~4 GB of RAM, a few
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks._results import cpu_model

PRECISIONS = ("32-true", "bf16-true", "16-true", "bf16-mixed", "16-mixed")
OUT = Path(__file__).resolve().parent / "results" / "precision.json"

CHILD = """
import json, resource, statistics, sys, time
import torch, timm
import adapters, specs

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

precision, batch, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
imports = peak_mib()
spec = specs.TimmSpec("vit_large_patch16_224", pretrained=False, model_kwargs={"num_classes": 0})
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
}))
"""


def measure(precision: str, batch: int, calls: int) -> dict[str, Any]:
    """One precision in a fresh process (its peak RSS is its own)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, precision, str(batch), str(calls)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if run.returncode != 0:
        return {"precision": precision, "error": run.stderr.strip().splitlines()[-1][:300]}
    row = json.loads(run.stdout.strip().splitlines()[-1])
    row["load"] = list(os.getloadavg())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    load = list(os.getloadavg())
    rows = [measure(p, args.batch, args.calls) for p in args.only]
    base = next((r for r in rows if r["precision"] == "32-true" and "error" not in r), None)
    for r in rows:
        if base is not None and "error" not in r:
            for k in ("build_mib", "peak_mib", "forward_ms"):
                r[f"{k}_ratio"] = round(r[k] / base[k], 3)
        print(json.dumps(r))
    meta = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load, "batch": args.batch}
    meta["torch_threads"] = __import__("torch").get_num_threads()
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

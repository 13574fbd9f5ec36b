"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``.

Each suite module exposes ``run(quick: bool) -> list[dict]`` of rows made by
``benchmarks._timing.ratio_row``. Results go to ``DIR/results.json`` and ``DIR/results.md``
(and ``DIR/bridge_sizes.png`` when the bridge suite ran).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

#: suite name -> module; the order is the order they run in
SUITES = {
    "adapter_overhead": "benchmarks.adapter_overhead",
    "vs_eva": "benchmarks.vs_eva",
    "bridge": "benchmarks.bridge",
    "jax_function": "benchmarks.jax_function",
    "onnx": "benchmarks.onnx_bench",
    "embed": "benchmarks.embed_bench",
    "lowering": "benchmarks.lowering",
    "lowering_coverage": "benchmarks.lowering_coverage",
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for name in ("jax", "onnxruntime", "timm", "transformers"):
        try:
            info[name] = importlib.import_module(name).__version__
        except Exception:  # a missing optional backend is reported, not fatal
            info[name] = None
    return info


def to_markdown(results: dict[str, Any]) -> str:
    """A markdown table per suite: case, ours, baseline, times, ratio and spread."""
    lines = [
        f"# Benchmark results ({results['date']}, {'quick' if results['quick'] else 'full'})",
        "",
    ]
    m = results["machine"]
    lines.append(
        f"Machine: {m['platform']}, {m['cpu_count']} cores, torch {m['torch']}"
        f" ({m['torch_threads']} threads), jax {m['jax']}, onnxruntime {m['onnxruntime']},"
        f" CUDA: {m['cuda'] or 'none'}."
    )
    lines.append("")
    lines.append(
        "ratio = ours / baseline (time per call; below 1 is faster). spread = (max-min)/median over repeats."
    )
    for suite, payload in results["suites"].items():
        lines += ["", f"## {suite}", ""]
        if "error" in payload:
            lines.append(f"Not run: {payload['error']}")
            continue
        rows = payload["rows"]
        extra_keys = sorted(
            {k for r in rows for k in r}
            - {"case", "ours", "baseline", "ours_s", "baseline_s", "ratio", "spread"}
        )
        head = [
            "case",
            "ours",
            "baseline",
            "ours ms",
            "baseline ms",
            "ratio",
            "spread",
            *extra_keys,
        ]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for r in rows:
            cells = [
                str(r["case"]),
                str(r["ours"]),
                str(r["baseline"]),
                f"{r['ours_s'] * 1e3:.4g}",
                f"{r['baseline_s'] * 1e3:.4g}",
                f"{r['ratio']:.3g}",
                f"{r['spread']:.0%}",
                *(_fmt(r.get(k, "")) for k in extra_keys),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append(f"\n({payload['seconds']:.0f} s)")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plot_bridge(rows: list[dict[str, Any]], path: Path) -> None:
    """Log-log plot of conversion time against array size, one line per direction and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if "nbytes" not in r:
            continue
        direction = r.get("direction", r["case"])
        for who, seconds in ((r["ours"], r["ours_s"]), (r["baseline"], r["baseline_s"])):
            series.setdefault(f"{direction} ({who})", []).append((r["nbytes"], seconds))
    if not series:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_xlabel("array size (bytes)")
    ax.set_ylabel("seconds per conversion")
    ax.set_title("interop bridge: conversion time vs size")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes on 2 CPU cores")
    parser.add_argument("--only", nargs="+", choices=sorted(SUITES), help="run only these suites")
    parser.add_argument("--out", default="benchmarks/results", help="output directory")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "suites": {},
    }
    for name, module_name in SUITES.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            rows = module.run(quick=args.quick)
            results["suites"][name] = {"rows": rows, "seconds": time.perf_counter() - start}
            for r in rows:
                print(
                    f"  {r['case']}: ratio {r['ratio']:.3g} (spread {r['spread']:.0%})", flush=True
                )
        except Exception as err:  # one failing suite must not hide the others
            traceback.print_exc()
            results["suites"][name] = {"error": f"{type(err).__name__}: {err}"}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(to_markdown(results))
    if "bridge" in results["suites"] and "rows" in results["suites"]["bridge"]:
        plot_bridge(results["suites"]["bridge"]["rows"], out / "bridge_sizes.png")
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 1 if any("error" in s for s in results["suites"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())

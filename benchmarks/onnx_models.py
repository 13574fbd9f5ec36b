"""ONNX -> JAX on the coverage list: ``python -m benchmarks.onnx_models [--only NAME ...]
[--resume] [--out DIR]``.

Every architecture of ``benchmarks/lowering_coverage.py``'s list (random weights, its own input
size) is exported with ``adapters.export_onnx`` (batch left free), lowered from the ONNX file
with ``interop.onnx_lowering.lower_onnx`` and compared with ONNX Runtime on the same random
batch of 2 (float32; max abs diff, and relative to the largest output). Then the median time of
a call at that batch: ONNX Runtime, and the ONNX -> JAX function under ``jax.jit``. Rows are
written after every model to ``onnx_models.{json,md}`` (default: the committed
``benchmarks/results/``), with the load average before each; a killed run keeps its rows.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import jax
import numpy as np
import torch

from benchmarks.lowering_coverage import _input, candidates

OUT = Path(__file__).parent / "results"
REPEATS = 5


def _adapter(module: torch.nn.Module) -> Any:
    """A torch adapter around a bare module (what ``export_onnx`` takes)."""
    import adapters
    import specs

    module.eval()
    cls = type(module)
    return adapters.Adapter(
        forward=lambda p, x: torch.func.functional_call(module, p, (x,)),
        params=dict(module.state_dict()),
        spec=specs.ModuleSpec(class_path=f"{cls.__module__}.{cls.__qualname__}"),
        framework="torch",
        module=module,
    )


def _median_s(fn: Any) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, factory: Any, where: Path) -> dict[str, Any]:
    import adapters
    from interop.onnx_lowering import lower_onnx

    module = factory()
    x = _input(module, 2)
    start = time.perf_counter()
    onnx_spec = adapters.export_onnx(_adapter(module), where / f"{name.replace('/', '_')}.onnx", x)
    row: dict[str, Any] = {"name": name, "export_s": time.perf_counter() - start}
    ort = adapters.build(onnx_spec)
    start = time.perf_counter()
    forward, params, graph = lower_onnx(onnx_spec.path)
    row["nodes"] = len(graph.nodes)
    run = jax.jit(forward)
    xn = np.random.default_rng(0).standard_normal(tuple(x.shape)).astype(np.float32)
    got = jax.tree.leaves(run(params, xn))
    row["lower_compile_s"] = time.perf_counter() - start
    want = jax.tree.leaves(ort(xn))
    diff = max(
        float(np.abs(np.asarray(g) - np.asarray(w)).max()) for g, w in zip(got, want, strict=True)
    )
    scale = max(float(np.abs(np.asarray(w)).max()) for w in want)
    row.update(lowered=True, max_abs_diff=diff, out_scale=scale, rel_diff=diff / max(scale, 1e-30))
    row["ort_ms"] = _median_s(lambda: ort(xn)) * 1e3
    row["jax_ms"] = _median_s(lambda: run(params, xn)) * 1e3
    return row


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    ok = [r for r in rows if r.get("lowered")]
    close = [r for r in ok if r["max_abs_diff"] <= 1e-4 or r["rel_diff"] <= 1e-4]
    lines = [
        f"# ONNX -> JAX on the coverage list ({meta['date']})",
        "",
        f"{len(ok)}/{len(rows)} lower from their ONNX export; {len(close)}/{len(rows)} within "
        "1e-4 of ONNX Runtime (absolute, or relative to the largest output). float32, random "
        "weights, batch 2; times are the median of "
        f"{REPEATS} calls (ONNX Runtime; ONNX -> JAX under jit). Load average (1, 5, 15 min) "
        f"before each row; the machine is shared. Machine: {meta['machine']}.",
        "",
        "| architecture | lowers | nodes | max abs diff | out scale | rel diff | ORT ms | JAX ms | load | error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def f(k: str, fmt: str, r: dict[str, Any] = r) -> str:
            return format(r[k], fmt) if k in r else ""

        err = str(r.get("error", "")).replace("|", "/").replace("\n", " ")[:300]
        load = "/".join(f"{v:.1f}" for v in r.get("loadavg", ()))
        lines.append(
            f"| {r['name']} | {'yes' if r.get('lowered') else '**no**'} | {r.get('nodes', '')} "
            f"| {f('max_abs_diff', '.2e')} | {f('out_scale', '.3g')} | {f('rel_diff', '.1e')} "
            f"| {f('ort_ms', '.1f')} | {f('jax_ms', '.1f')} | {load} | {err} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onnx_models")
    parser.add_argument("--only", nargs="+")
    parser.add_argument("--resume", action="store_true", help="skip names already measured")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    path = args.out / "onnx_models.json"
    rows = json.loads(path.read_text())["rows"] if args.resume and path.exists() else []
    done = {r["name"] for r in rows}
    from benchmarks._results import machine

    m = machine()
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{m['platform']}, {m['cpu_count']} cores, onnxruntime {m['onnxruntime']}, jax {m['jax']}",
    }
    for _, name, factory in candidates():
        if (args.only and name not in args.only) or (name in done and not args.only):
            continue
        load = [round(v, 2) for v in os.getloadavg()]
        with tempfile.TemporaryDirectory() as where:
            try:
                row = measure(name, factory, Path(where))
            except Exception as err:  # one architecture's failure is a result
                traceback.print_exc()
                row = {
                    "name": name,
                    "lowered": False,
                    "error": f"{type(err).__name__}: {err}"[:500],
                }
        row["loadavg"] = load
        rows = [r for r in rows if r["name"] != name] + [row]
        print({k: v for k, v in row.items()}, flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
        (args.out / "onnx_models.md").write_text(to_markdown(rows, meta))
        jax.clear_caches()
        gc.collect()


if __name__ == "__main__":
    main()

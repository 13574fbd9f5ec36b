"""One short check for a lent GPU: CUDA pointer equality, stream safety, bridge timings.

Run: ``python -m benchmarks.gpu_check [OUT_DIR]`` (default ``$OUT``, else ``.``). Needs CUDA
torch and ``jax[cuda12]``; anything missing is reported in the JSON rather than crashing.
Writes ``gpu_check.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _checks(report: dict[str, Any]) -> None:
    import jax
    import torch

    import interop

    if not torch.cuda.is_available():
        report["missing"].append("CUDA torch (torch.cuda.is_available() is False)")
        return
    try:
        jax.devices("gpu")
    except RuntimeError:
        report["missing"].append("jax GPU backend: pip install 'jax[cuda12]'")
    dev = torch.device("cuda:0")
    t = torch.randn(1 << 20, device=dev)
    checks = report["checks"]
    if not any("jax" in m for m in report["missing"]):
        j = interop.to_jax(t, copy=False)
        checks["torch->jax cuda ptr equal"] = interop.data_ptr(j) == t.data_ptr()
        back = interop.to_torch(j, copy=False)
        checks["jax->torch cuda ptr equal"] = back.data_ptr() == t.data_ptr()
        # stream safety: a long kernel on a side stream writes; the consumer must see it.
        side = torch.cuda.Stream()
        ok = True
        for _ in range(5):
            x = torch.zeros(1 << 24, device=dev)
            with torch.cuda.stream(side):
                torch.cuda._sleep(50_000_000)  # ~tens of ms of GPU time before the write
                x.fill_(1.0)
                y = interop.to_jax(x)  # JAX gets the side stream's work via __dlpack__(stream)
            ok &= float(y.sum()) == float(x.numel())
        checks["torch side stream -> jax sees writes"] = bool(ok)
    checks["cuda -> numpy copy=False raises"] = _raises(lambda: interop.to_numpy(t, copy=False))
    host = interop.to_numpy(t)
    checks["cuda -> numpy values"] = bool((host == t.cpu().numpy()).all())
    ov = interop.to_ortvalue(t)
    checks["ort device"] = ov.device_name()
    checks["cuda -> ort values"] = (
        bool((ov.numpy() == host).all()) if ov.device_name() == "cpu" else True
    )
    from benchmarks._timing import interleaved, ratio_row

    for nbytes in (2**20, 2**28):
        x = torch.ones(nbytes // 4, device=dev)

        def sync(y: Any) -> None:
            torch.cuda.synchronize()

        fns = {
            "zero_copy": lambda x=x: sync(interop.to_torch(interop.to_jax(x, copy=False))),
            "copy": lambda x=x: sync(interop.to_torch(interop.to_jax(x, copy=True))),
        }
        if any("jax" in m for m in report["missing"]):
            break
        report["rows"].append(
            ratio_row(
                f"cuda torch->jax->torch {nbytes >> 10} KB",
                interleaved(fns, repeats=5),
                "zero_copy",
                "copy",
            )
        )


def _raises(fn: Any) -> bool:
    try:
        fn()
    except BufferError:
        return True
    return False


def main(out_dir: str) -> dict[str, Any]:
    report: dict[str, Any] = {"missing": [], "checks": {}, "rows": [], "errors": []}
    start = time.perf_counter()
    try:
        _checks(report)
    except Exception as err:  # report, do not crash: the JSON is the deliverable
        report["errors"].append(f"{type(err).__name__}: {err}")
    report["seconds"] = time.perf_counter() - start
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "gpu_check.json"), "w") as fh:
        json.dump(report, fh, indent=2, default=str)
    print(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "."))

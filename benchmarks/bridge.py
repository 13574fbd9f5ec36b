"""Conversion time against array size (1 KB .. 256 MB), zero-copy against a copy, per direction.

Ratio = zero-copy time / copy time (below 1 is faster; the goal at 256 MB is below 1e-3).

Honesty notes, as fields of every row:

* ``raw_s``: the consumer's own public zero-copy import on the same array
  (``jax.dlpack.from_dlpack``, ``torch.from_dlpack``, ``OrtValue.from_dlpack``, ...), timed
  interleaved with ours. A zero-copy conversion is a fixed cost, independent of size, so at
  256 MB the ratio says only how that fixed cost compares with a memcpy; ``raw_s`` shows how
  much of it is the framework's (``jax.dlpack.from_dlpack`` alone is ~100 us on this 2-core
  machine, which our bridge avoids by calling jaxlib's importer directly, see
  ``interop/_src/fast.py``).
* ``vs_1kb``: zero-copy time at this size / at 1 KB: ~1 everywhere means constant in size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import onnxruntime as ort
import torch

import interop
from benchmarks._timing import interleaved, ratio_row

SIZES_FULL = [2**10, 2**14, 2**18, 2**22, 2**26, 2**28]  # bytes: 1 KB .. 256 MB
SIZES_QUICK = [2**10, 2**20, 2**28]


def _sources(nbytes: int) -> dict[str, Any]:
    t = interop.to_torch(interop.to_jax(torch.ones(nbytes // 4)), copy=True)  # 64-byte aligned
    return {"torch": t, "jax": interop.to_jax(t, copy=True), "numpy": interop.to_numpy(t)}


def _block(y: Any) -> Any:
    return y.block_until_ready() if isinstance(y, jax.Array) else y


def _raw_jax(x: Any) -> Any:
    return jax.dlpack.from_dlpack(x, copy=False)


def _raw_numpy(x: Any) -> Any:
    return np.asarray(x) if isinstance(x, jax.Array) else x.numpy()


#: the plain framework call each direction is compared with (same memory, no copy)
RAW: dict[str, Callable[[Any], Any]] = {
    "torch->jax": _raw_jax,
    "jax->torch": torch.from_dlpack,
    "torch->numpy": _raw_numpy,
    "numpy->jax": _raw_jax,
    "jax->numpy": _raw_numpy,
    "torch->ort": ort.OrtValue.from_dlpack,
    "numpy->ort": ort.OrtValue.from_dlpack,
}

DIRECTIONS: dict[str, tuple[str, Callable[..., Any]]] = {
    "torch->jax": ("torch", interop.to_jax),
    "jax->torch": ("jax", interop.to_torch),
    "torch->numpy": ("torch", interop.to_numpy),
    "numpy->jax": ("numpy", interop.to_jax),
    "jax->numpy": ("jax", interop.to_numpy),
    "torch->ort": ("torch", interop.to_ortvalue),
    "numpy->ort": ("numpy", interop.to_ortvalue),
}


def run(quick: bool = True) -> list[dict]:
    """One row per (direction, size): zero-copy against copy=True."""
    rows = []
    first: dict[str, float] = {}
    for nbytes in SIZES_QUICK if quick else SIZES_FULL:
        src = _sources(nbytes)
        for direction, (kind, fn) in DIRECTIONS.items():
            x = src[kind]
            timings = interleaved(
                {
                    "zero_copy": lambda x=x, fn=fn: _block(fn(x, copy=False)),
                    "copy": lambda x=x, fn=fn: _block(fn(x, copy=True)),
                    "raw": lambda x=x, raw=RAW[direction]: _block(raw(x)),
                },
                repeats=3 if nbytes >= 2**26 else 7,
                number=1 if nbytes >= 2**22 else 20,
            )
            rows.append(
                ratio_row(
                    f"bridge {direction} {nbytes // 1024} KB",
                    timings,
                    "zero_copy",
                    "copy",
                    direction=direction,
                    nbytes=nbytes,
                    raw_s=timings["raw"]["median_s"],
                    vs_1kb=timings["zero_copy"]["median_s"]
                    / first.setdefault(direction, timings["zero_copy"]["median_s"]),
                )
            )
        del src
    return rows


def _print(rows: list[dict]) -> None:
    print(
        f"{'case':40s} {'ours_s':>10s} {'copy_s':>10s} {'ratio':>10s} {'raw_s':>10s} "
        f"{'vs_1kb':>7s} {'spread':>7s}"
    )
    for r in rows:
        print(
            f"{r['case']:40s} {r['ours_s']:10.2e} {r['baseline_s']:10.2e} "
            f"{r['ratio']:10.2e} {r['raw_s']:10.2e} {r['vs_1kb']:7.2f} {r['spread']:7.2f}"
        )


if __name__ == "__main__":
    import sys

    _print(run(quick="--full" not in sys.argv))

"""Conversion time against array size (1 KB .. 256 MB), zero-copy against a copy, per direction.

Ratio = zero-copy time / the time of a plain memcpy of the same bytes (``np.copyto`` into a
preallocated array: the cheapest copy there is; below 1 is faster; the goal at 256 MB is
below 1e-3). Also in every row:

* ``clone_s``: the source framework's own allocating copy (``torch.clone``, ``np.copy``,
  ``jnp.array(copy=True)``); ``copy_true_s``: the bridge's ``copy=True``;
* ``raw_s``: the consumer's own public zero-copy import on the same array
  (``jax.dlpack.from_dlpack``, ``torch.from_dlpack``, ``OrtValue.from_dlpack``, ...), timed
  interleaved with ours. A zero-copy conversion is a fixed cost, independent of size, so at
  256 MB the ratio says only how that fixed cost compares with a memcpy; ``raw_s`` shows how
  much of it is the framework's (into JAX, ``jax.dlpack.from_dlpack`` costs more than our
  whole conversion, which calls jaxlib's importer directly, see ``interop/_src/fast.py``).
* ``vs_1kb``: zero-copy time at this size / at 1 KB: ~1 everywhere means constant in size.

Last, `steady` times 200 conversions in a row at 256 MB against the same at 1 KB.

Run: ``python -m benchmarks.bridge [--full]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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


#: each source framework's own allocating copy (the ``clone_s`` column)
CLONE: dict[str, Callable[[Any], Any]] = {
    "torch": torch.clone,
    "jax": lambda x: jax.numpy.array(x, copy=True),
    "numpy": np.copy,
}

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


def _host(x: Any) -> np.ndarray:
    """A NumPy view of a CPU array of any of the three frameworks (no copy)."""
    if isinstance(x, torch.Tensor):
        return x.numpy()
    return np.asarray(x)


def run(quick: bool = True) -> Iterator[dict[str, Any]]:
    """One row per (direction, size): zero-copy against a plain memcpy of the same bytes;
    then the steady-state rows (`steady`)."""
    first: dict[str, float] = {}
    for nbytes in SIZES_QUICK if quick else SIZES_FULL:
        src = _sources(nbytes)
        for direction, (kind, fn) in DIRECTIONS.items():
            x = src[kind]
            view = _host(x)
            dst = np.empty_like(view)
            timings = interleaved(
                {
                    "zero_copy": lambda x=x, fn=fn: _block(fn(x, copy=False)),
                    "memcpy (np.copyto)": lambda view=view, dst=dst: np.copyto(dst, view),
                    "clone": lambda x=x, clone=CLONE[kind]: _block(clone(x)),
                    "copy=True": lambda x=x, fn=fn: _block(fn(x, copy=True)),
                    "raw": lambda x=x, raw=RAW[direction]: _block(raw(x)),
                },
                repeats=3 if nbytes >= 2**26 else 7,
                number=1 if nbytes >= 2**22 else 20,
            )
            zero = timings["zero_copy"]["median_s"]
            yield ratio_row(
                f"bridge {direction} {nbytes // 1024} KB",
                timings,
                "zero_copy",
                "memcpy (np.copyto)",
                direction=direction,
                nbytes=nbytes,
                clone_s=timings["clone"]["median_s"],
                copy_true_s=timings["copy=True"]["median_s"],
                raw_s=timings["raw"]["median_s"],
                vs_1kb=zero / first.setdefault(direction, zero),
            )
            del view, dst
        del src
    yield from steady(quick)


#: the steady-state directions: one per target framework
STEADY = ("torch->numpy", "torch->jax", "torch->ort")


def steady(quick: bool = True, calls: int = 200) -> Iterator[dict[str, Any]]:
    """``calls`` conversions in a row of a 256 MB array against the same of a 1 KB array.

    The size rows time one call at 256 MB right after a 256 MB copy has flushed the caches;
    here both sizes are timed the same way, many calls in a row, so a ratio near 1 says the
    zero-copy cost does not depend on the size.
    """
    small, large = _sources(2**10), _sources(2**28)
    for direction in STEADY:
        kind, fn = DIRECTIONS[direction]
        timings = interleaved(
            {
                "256 MB": lambda fn=fn, x=large[kind]: _block(fn(x, copy=False)),
                "1 KB": lambda fn=fn, x=small[kind]: _block(fn(x, copy=False)),
            },
            repeats=5 if quick else 15,
            number=calls,
        )
        yield ratio_row(
            f"bridge {direction} {calls} calls in a row, 256 MB vs 1 KB",
            timings,
            "256 MB",
            "1 KB",
            direction=direction,
            calls=calls,
        )


def _print(rows: Iterable[dict]) -> None:
    print(f"{'case':56s} {'ours_s':>10s} {'base_s':>10s} {'ratio':>10s} {'spread':>7s}")
    for r in rows:
        print(
            f"{r['case']:56s} {r['ours_s']:10.2e} {r['baseline_s']:10.2e} "
            f"{r['ratio']:10.2e} {r['spread']:7.2f}"
        )


if __name__ == "__main__":
    import sys

    _print(run(quick="--full" not in sys.argv))

"""The JAX runtime's build: first build (torch.export + lowering + checks + jax.export
artifact written) against a cache hit (the artifact read back), for ViT-tiny.

Both run in this process on the same torch adapter, interleaved; every first build gets a
fresh cache directory. JAX's persistent compilation cache is pointed at a directory of its own
first (as ``lower_to_jax`` would, once), so later first builds may reuse compiled checks: the
first-build figure is a lower bound on a truly cold start. The rows record the load average.

Run: ``python -m benchmarks --only jax_runtime`` (or ``python -m benchmarks.jax_runtime``).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._timing import interleaved, load_average, ratio_row

#: (case, timm model name, model kwargs, input size)
CASES = [("ViT-tiny/16 224", "vit_tiny_patch16_224", {}, 224)]


def run(quick: bool = True) -> Iterator[dict[str, Any]]:
    """One row per model: cache-hit build time against first-build time."""
    import torch

    import adapters
    import specs

    for case, name, kwargs, size in CASES:
        ref = adapters.build(specs.TimmSpec(model_name=name, pretrained=False, model_kwargs=kwargs))
        timings = _time_builds(ref, torch.zeros(2, 3, size, size), repeats=3 if quick else 5)
        yield ratio_row(
            f"{case} build", timings, "cache hit", "first build", loadavg=load_average()
        )


def _time_builds(ref: Any, example: Any, repeats: int) -> dict[str, dict[str, float]]:
    import adapters

    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm"
        adapters.lower_to_jax(ref, example, cache_dir=warm)  # fills the cache (and XLA's)
        fresh = iter(range(1000))

        def first_build() -> None:
            out = adapters.lower_to_jax(ref, example, cache_dir=Path(tmp) / str(next(fresh)))
            assert out.info["cache"] == "miss"

        def cache_hit() -> None:
            assert adapters.lower_to_jax(ref, example, cache_dir=warm).info["cache"] == "hit"

        return interleaved(
            {"first build": first_build, "cache hit": cache_hit}, repeats=repeats, warmup=0
        )


if __name__ == "__main__":
    for r in run(quick="--full" not in sys.argv):
        print(r)

"""The JAX runtime's build: first build (torch.export + lowering + checks + jax.export
artifact written) against a cache hit (the artifact read back), for ViT-tiny; and the
forward a cache hit serves (the deserialised artifact) against the lowering itself, both
under ``jax.jit`` at batch 16.

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
    """Two rows per model: cache-hit build time against first-build time, and the cache hit's
    forward against the lowering's (jit, batch 16)."""
    import jax
    import torch

    import adapters
    import specs

    with tempfile.TemporaryDirectory() as xla:
        # else XLA's cache follows the first build's temporary cache_dir, deleted before the
        # later rows compile (each compile then warns that it cannot write its entry)
        if not jax.config.jax_compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", xla)
        for case, name, kwargs, size in CASES:
            spec = specs.TimmSpec(model_name=name, pretrained=False, model_kwargs=kwargs)
            ref = adapters.build(spec)
            example = torch.zeros(2, 3, size, size)
            timings = _time_builds(ref, example, repeats=3 if quick else 5)
            yield ratio_row(
                f"{case} build", timings, "cache hit", "first build", loadavg=load_average()
            )
            timings = _time_forwards(ref, example, size, repeats=7)
            yield ratio_row(
                f"{case} forward, jit, batch 16",
                timings,
                "cache hit",
                "lowered",
                loadavg=load_average(),
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


def _time_forwards(ref: Any, example: Any, size: int, repeats: int) -> dict[str, dict[str, float]]:
    import jax
    import numpy as np

    import adapters

    x = np.random.default_rng(0).standard_normal((16, 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        served = {
            "lowered": adapters.lower_to_jax(ref, example, cache_dir=tmp),
            "cache hit": adapters.lower_to_jax(ref, example, cache_dir=tmp),
        }
        assert [a.info["cache"] for a in served.values()] == ["miss", "hit"]

        def call(adapter: Any) -> Any:
            forward, params, xj = jax.jit(adapter.forward), adapter.params, jax.numpy.asarray(x)
            return lambda: forward(params, xj).block_until_ready()

        return interleaved({k: call(a) for k, a in served.items()}, repeats=repeats, warmup=1)


if __name__ == "__main__":
    for r in run(quick="--full" not in sys.argv):
        print(r)

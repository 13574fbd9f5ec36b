"""Seeded builds: one spec gives one set of random weights, and the caller's RNG is left alone.

A source that makes weights at random (a model built without pretrained weights, the layers a
checkpoint does not cover, a user's loader) draws them from torch's global generator, so
without a seed two builds of one spec differed, and the runtimes' caches, keyed by the weights'
digest, missed in every new process. `build` runs each source inside `seeded`: torch's CPU
generator (and those of the CUDA devices, when CUDA is initialised) is seeded with the spec's
``seed`` and restored afterwards. Flax sources take their init key from the same field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs

from .errors import BuildError

#: seeds are 32-bit (``specs`` checks the same range on the records' ``seed`` fields): JAX,
#: without x64, keeps only the low 32 bits of a larger one
SEED_LIMIT = 2**32
DEFAULT_SEED = 0


def check_seed(seed: Any) -> None:
    """Raise a `BuildError` naming ``seed`` unless it is None or an integer in ``[0, 2**32)``."""
    if seed is None or (
        isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_LIMIT
    ):
        return
    raise BuildError(
        "seed",
        "not a seed",
        expected="an integer from 0 to 2**32 - 1, or None (the spec's own seed)",
        got=seed,
        fix="Pass seed=0 (the default of every spec) or another integer in that range",
    )


def has_seed_field(spec: Any) -> bool:
    """Whether ``spec`` is an attrs record with a ``seed`` field (every built-in source but
    ONNX, whose weights are in the file)."""
    return attrs.has(type(spec)) and any(f.name == "seed" for f in attrs.fields(type(spec)))


def with_seed(spec: Any, seed: int | None) -> Any:
    """``spec`` with its ``seed`` field set to ``seed`` (the spec itself when ``seed`` is None
    or it has no such field), so that ``adapter.spec`` says which weights were built."""
    if seed is None or not has_seed_field(spec) or spec.seed == seed:
        return spec
    return attrs.evolve(spec, seed=seed)


def seed_of(spec: Any, seed: int | None = None) -> int:
    """The seed a build of ``spec`` uses: ``seed`` if given, else the spec's ``seed`` field when
    it holds an integer, else `DEFAULT_SEED`."""
    if seed is not None:
        return seed
    own = getattr(spec, "seed", None) if has_seed_field(spec) else None
    return own if isinstance(own, int) and not isinstance(own, bool) else DEFAULT_SEED


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's generators seeded with ``seed``; restore them afterwards.

    The CPU generator is always seeded and restored; the CUDA generators only when CUDA is
    already initialised (seeding it before would queue a lazy seed that outlives the block,
    and the built-in sources create their weights on the CPU anyway).
    """
    import torch  # here: `build` is imported by ``--help``, which imports no framework

    cuda = torch.cuda.is_initialized()
    cpu_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if cuda else None
    try:
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed_all(seed)
        yield
    finally:
        torch.random.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)

"""The XLA compiler options the JAX runtime compiles its forward with, per platform.

On the CPU, jaxlib hands only some float32 convolutions to YNNPACK by default;
``xla_cpu_experimental_ynn_fusion_type = individual convolution`` hands it every 2-D
convolution it takes (float32, NHWC / HWIO, more than 16 channels) and leaves dots to XLA.
Chosen by measurement (``benchmarks/results/lowering_speed_cpu_options*.md``: adding ``dot``
slowed ViT's matmuls). YNNPACK has had wrong-result bugs, and its gain depends on the
model, so the option is never taken on trust: the first build checks the forward compiled with
it against torch and times a few calls of it against XLA's defaults on the check input; it
keeps the option only where both pass (``info["xla_options"]`` says which; a cache hit reuses
the first build's choice).

The options apply where the runtime compiles: a call of ``backbone.forward`` (or of the
adapter) outside ``jax.jit``. Inside a user's own ``jax.jit`` the outer program is compiled
with that jit's options; pass ``compiler_options=backbone.info["xla_options"]`` to it for the
same speed. An option the user names in ``$XLA_FLAGS`` is left to the user.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

#: calls of each compilation timed at the first build, alternately
ROUNDS = 5

#: per export platform, the options tried at the first build
PLATFORM_OPTIONS: Mapping[str, Mapping[str, str]] = {
    "cpu": {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    },
}


def compiler_options(platform: str) -> dict[str, str]:
    """The options to try for ``platform``: its `PLATFORM_OPTIONS` less those ``$XLA_FLAGS``
    names, or none when this jaxlib does not accept them."""
    flags = os.environ.get("XLA_FLAGS", "")
    wanted = {k: v for k, v in PLATFORM_OPTIONS.get(platform, {}).items() if f"--{k}" not in flags}
    if not wanted or not _accepted(platform, tuple(sorted(wanted.items()))):
        return {}
    return wanted


@functools.cache
def _accepted(platform: str, options: tuple[tuple[str, str], ...]) -> bool:
    """Whether this jaxlib compiles a small dot for ``platform`` with ``options``."""
    try:
        device = jax.devices(platform)[0]
    except RuntimeError:  # no backend of that name here
        return False
    x = jax.device_put(jnp.ones((4, 4), jnp.float32), device)
    try:
        jax.jit(lambda a: a @ a).lower(x).compile(compiler_options=dict(options))
    except jax.errors.JaxRuntimeError:  # an option this jaxlib does not know
        return False
    return True


def jit(fn: Callable, options: Mapping[str, str]) -> Callable:
    """``jax.jit(fn)``, compiled with ``options`` where called outside any JAX transformation.

    JAX takes compiler options on a top-level jit only (inside ``jit``, ``grad`` or ``vmap``
    the enclosing program is compiled with its own), so a call with a traced argument goes to
    the plain jit."""
    plain = jax.jit(fn)
    if not options:
        return plain
    tuned = jax.jit(fn, compiler_options=dict(options))

    def call(*args: Any) -> Any:
        traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(args))
        return (plain if traced else tuned)(*args)

    return call


def first_passing(
    options: Mapping[str, str],
    serve: Callable[[dict[str, str]], Any],
    check: Callable[[Any], Any],
    passes: Callable[[Any], bool],
    call: Callable[[Any], Any],
) -> tuple[Any, dict[str, str], Any]:
    """``(served, options, report)``: ``serve(options)`` and its ``check`` report where
    ``passes`` accepts the report and ``call`` on it measures faster than on ``serve({})``
    (XLA's defaults); else ``serve({})`` and its report, which the caller judges."""
    plain = serve({})
    if options:
        tuned = serve(dict(options))
        report = check(tuned)
        if passes(report) and _faster(lambda: call(tuned), lambda: call(plain)):
            return tuned, dict(options), report
    return plain, {}, check(plain)


def _faster(a: Callable[[], Any], b: Callable[[], Any], rounds: int = ROUNDS) -> bool:
    """Whether ``a``'s median time beats ``b``'s, timed alternately after a first call each
    (compilation)."""
    times: dict[Callable, list[float]] = {a: [], b: []}
    for f in (a, b):
        f()
    for i in range(rounds):
        for f in (a, b) if i % 2 == 0 else (b, a):
            start = time.perf_counter()
            f()
            times[f].append(time.perf_counter() - start)
    return statistics.median(times[a]) < statistics.median(times[b])

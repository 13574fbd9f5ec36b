"""The JAX runtime's per-platform XLA compiler options (issue 24 item 2).

On the CPU the first build compiles the lowered forward with `PLATFORM_OPTIONS` (YNNPACK for
every 2-D convolution), keeps them only where that compilation passes the check against torch
and measures faster than XLA's defaults, records the choice in ``info["xla_options"]`` and
reuses it on a cache hit.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.runtimes.jax import xla_options

SPEC = specs.TimmSpec(model_name="resnet18", pretrained=False, model_kwargs={"num_classes": 0})


def _cpu_options_available() -> bool:
    return bool(xla_options.compiler_options("cpu"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    torch.manual_seed(0)
    ref = adapters.build(SPEC)
    cache = tmp_path_factory.mktemp("jax-cache")
    low = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=cache)
    return ref, low, cache


def test_cpu_build_records_the_checked_options_and_matches_torch(built) -> None:
    if not _cpu_options_available():
        pytest.skip("this jaxlib does not accept the CPU options")
    ref, low, cache = built
    # kept where they passed the check and measured faster on this machine, else the defaults
    assert low.info["xla_options"] in ({}, dict(xla_options.PLATFORM_OPTIONS["cpu"]))
    x = np.random.default_rng(1).standard_normal((5, 3, 32, 32)).astype(np.float32)
    want = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(low.forward(low.params, x), want, atol=1e-4, rtol=1e-4)
    hit = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=cache)
    assert hit.info["cache"] == "hit" and hit.info["xla_options"] == low.info["xla_options"]
    np.testing.assert_allclose(hit.forward(hit.params, x), want, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(jax.jit(hit.forward)(hit.params, x), want, atol=1e-4, rtol=1e-4)
    # the served forward still differentiates through the jit that carries the options
    g = jax.grad(lambda xx: jnp.sum(hit.forward(hit.params, xx)))(jnp.asarray(x[:2]))
    assert g.shape == (2, 3, 32, 32) and bool(jnp.all(jnp.isfinite(g)))


def test_the_cpu_option_sends_convolutions_to_ynnpack() -> None:
    if not _cpu_options_available():
        pytest.skip("this jaxlib does not accept the CPU options")
    x = jnp.ones((1, 64, 14, 14), jnp.float32)
    w = jnp.ones((64, 64, 3, 3), jnp.float32)

    def f(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), [(1, 1)] * 2)

    def ynn_fusions(options: dict) -> int:
        text = jax.jit(f, compiler_options=options or None).lower(x, w).compile().as_text()
        return text.count('"__ynn_fusion"')

    assert ynn_fusions(xla_options.compiler_options("cpu")) >= 1
    # outside the transformations the served jit compiles with them; inside, JAX would refuse
    # them on a nested jit, so the plain one runs
    fn = xla_options.jit(f, xla_options.compiler_options("cpu"))
    want = jax.jit(f)(x, w)
    np.testing.assert_allclose(fn(x, w), want, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(fn)(x, w), want, rtol=1e-5)


def test_an_option_named_in_xla_flags_is_left_to_the_user(monkeypatch) -> None:
    (name,) = xla_options.PLATFORM_OPTIONS["cpu"]
    monkeypatch.setenv("XLA_FLAGS", f"--{name}=LIBRARY_FUSION_TYPE_DOT")
    assert xla_options.compiler_options("cpu") == {}


def test_an_option_this_jaxlib_does_not_know_is_not_tried(monkeypatch) -> None:
    monkeypatch.setattr(
        xla_options, "PLATFORM_OPTIONS", {"cpu": {"xla_cpu_no_such_option_exists": "1"}}
    )
    assert xla_options.compiler_options("cpu") == {}
    assert xla_options.compiler_options("no-such-platform") == {}


def test_options_that_fail_the_check_fall_back_to_xlas_defaults() -> None:
    served = []

    def serve(options: dict) -> dict:
        served.append(options)
        return options

    def fail(r):
        return not r

    got = xla_options.first_passing({"opt": "v"}, serve, bool, fail, lambda s: None)
    assert got == ({}, {}, False) and served == [{}, {"opt": "v"}]


def test_options_are_kept_only_where_they_measure_faster() -> None:
    def slow_when(slow: bool):
        return lambda s: time.sleep(0.02 if bool(s) == slow else 0.0)

    kept = xla_options.first_passing({"o": "v"}, dict, bool, bool, slow_when(False))
    assert kept == ({"o": "v"}, {"o": "v"}, True)
    dropped = xla_options.first_passing({"o": "v"}, dict, bool, bool, slow_when(True))
    assert dropped == ({}, {}, False)

"""The random ops of the table (``interop/_src/lowering/ops/random.py``), op by op, against the
distribution torch documents for each, on many draws.

The bounds follow from the sample size: a mean of ``n`` draws with standard deviation
``sigma`` is within ``Z * sigma / sqrt(n)`` of its expectation except with probability
below 1e-8 (``Z = 6``: the normal tail, ``n`` being large enough for the central limit). Every op
registered ``random=True`` has a case here (``test_every_random_op_has_a_case``); the
OpInfo samples compare them with torch's own draws (``benchmarks/_opinfo_random.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from interop._src.lowering.ops import RANDOM, TABLE

Z = 6.0
N = 40_000
KEY = jax.random.key(0)


def near(values, mean: float, sd: float) -> None:
    """The mean of ``values`` is within ``Z`` standard errors of ``mean``."""
    values = np.asarray(values, np.float64).ravel()
    bound = Z * sd / math.sqrt(values.size)
    assert abs(values.mean() - mean) <= bound, (values.mean(), mean, bound)


def moments(values, mean: float, var: float, fourth: float) -> None:
    """Mean and variance; ``fourth`` is the central fourth moment (the variance's spread)."""
    near(values, mean, math.sqrt(var))
    centred = (np.asarray(values, np.float64) - mean) ** 2
    near(centred, var, math.sqrt(fourth - var**2))


def within(values, low: float, high: float, *, closed: bool = False) -> None:
    v = np.asarray(values, np.float64)
    assert v.min() >= low and (v.max() <= high if closed else v.max() < high), (v.min(), v.max())


def integers(values) -> None:
    v = np.asarray(values, np.float64)
    assert (v == np.round(v)).all()


def ones(*shape, dtype=jnp.float32, value=1.0):
    return jnp.full(shape, value, dtype)


def _uniform(u, low=0.0, high=1.0):
    within(u, low, high)
    w = high - low
    moments(u, (low + high) / 2, w * w / 12, w**4 / 80)


def _normal(z, mean=0.0, sd=1.0):
    moments(z, mean, sd * sd, 3 * sd**4)


def _bernoulli(b, p):
    assert set(np.unique(np.asarray(b, np.float64))) <= {0.0, 1.0}
    near(b, p, math.sqrt(p * (1 - p)))


def _ints(v, low, high):
    integers(v)
    within(v, low, high)
    k = high - low  # discrete uniform
    moments(v, (low + high - 1) / 2, (k * k - 1) / 12, (k * k - 1) * (3 * k * k - 7) / 240)


def _cauchy(c, median, sigma):
    c = np.asarray(c, np.float64)
    near(c < median, 0.5, 0.5)  # the median, and the quartiles at median -+ sigma
    near(np.abs(c - median) < sigma, 0.5, 0.5)


def _geometric(g, p):
    integers(g)
    assert np.asarray(g).min() >= 1
    moments(g, 1 / p, (1 - p) / p**2, (1 - p) * (p * p - 9 * p + 9) / p**4)


def _exponential(e, lambd):
    within(e, 0, np.inf, closed=True)
    moments(e, 1 / lambd, 1 / lambd**2, 9 / lambd**4)


def _poisson(k, rate):
    integers(k)
    moments(k, rate, rate, rate * (1 + 3 * rate))


def _categorical(idx, weights):
    idx = np.asarray(idx).ravel()
    p = np.asarray(weights, np.float64) / np.sum(weights)
    for c, pc in enumerate(p):
        near(idx == c, pc, math.sqrt(pc * (1 - pc)) or 1e-12)


def _without_replacement(idx, weights):
    idx = np.asarray(idx)
    assert (np.diff(np.sort(idx, -1), axis=-1) != 0).all()  # distinct within a row
    assert not np.isin(idx, np.flatnonzero(np.asarray(weights) == 0)).any()
    _categorical(idx[..., 0], weights)  # the first index of a row is drawn as with replacement


def _dropout(out, p):
    y, mask = (np.asarray(a) for a in out)
    assert mask.dtype == np.bool_ and np.array_equal(y != 0, mask)
    np.testing.assert_allclose(y[mask], 1 / (1 - p), rtol=1e-6)
    _bernoulli(mask, 1 - p)


def _rrelu(out, lower, upper):
    y, noise = (np.asarray(a) for a in out)
    np.testing.assert_allclose(y, -noise, rtol=1e-6)  # the input is -1 everywhere
    _uniform(noise, lower, upper)


x_n = ones(N)
w4 = jnp.asarray([1.0, 2.0, 3.0, 0.0])
w25 = jnp.asarray([[1.0, 2.0, 3.0, 0.0, 4.0], [5.0, 0.0, 1.0, 1.0, 1.0]])
# (op name, id, args, kwargs, check of the output)
CASES = [
    ("aten.rand.default", "", ([N],), {}, _uniform),
    ("aten.rand.default", "bf16", ([N],), {"dtype": torch.bfloat16}, _uniform),
    ("aten.rand_like.default", "f16", (ones(N, dtype=jnp.float16),), {}, _uniform),
    ("aten.randn.default", "", ([N],), {}, _normal),
    ("aten.randn_like.default", "bf16", (ones(N, dtype=jnp.bfloat16),), {}, _normal),
    ("aten.randint.default", "", (10, [N]), {}, lambda v: _ints(v, 0, 10)),
    ("aten.randint.low", "", (-3, 5, [N]), {}, lambda v: _ints(v, -3, 5)),
    ("aten.randint_like.default", "", (x_n, 7), {}, lambda v: _ints(v, 0, 7)),
    ("aten.randint_like.low_dtype", "", (x_n, 2, 9), {}, lambda v: _ints(v, 2, 9)),
    ("aten.normal.Tensor_Tensor", "", (2 * x_n, 3 * x_n), {}, lambda z: _normal(z, 2, 3)),
    ("aten.normal.Tensor_float", "", (2 * x_n, 0.5), {}, lambda z: _normal(z, 2, 0.5)),
    ("aten.normal.float_Tensor", "", (-1.0, 2 * x_n), {}, lambda z: _normal(z, -1, 2)),
    ("aten.normal.float_float", "", (1.0, 3.0, [N]), {}, lambda z: _normal(z, 1, 3)),
    ("aten.normal_functional.default", "", (x_n, 4.0, 0.5), {}, lambda z: _normal(z, 4, 0.5)),
    ("aten.uniform.default", "", (x_n, -2.0, 5.0), {}, lambda u: _uniform(u, -2, 5)),
    ("aten.bernoulli.default", "", (0.3 * x_n,), {}, lambda b: _bernoulli(b, 0.3)),
    ("aten.bernoulli.p", "", (x_n, 0.8), {}, lambda b: _bernoulli(b, 0.8)),
    ("aten.bernoulli.Tensor", "", (x_n, 0.1 * x_n), {}, lambda b: _bernoulli(b, 0.1)),
    ("aten.exponential.default", "", (x_n, 2.0), {}, lambda e: _exponential(e, 2.0)),
    ("aten.geometric.default", "", (x_n, 0.25), {}, lambda g: _geometric(g, 0.25)),
    ("aten.cauchy.default", "", (x_n, 1.0, 2.0), {}, lambda c: _cauchy(c, 1.0, 2.0)),
    (
        "aten.log_normal.default",
        "",
        (x_n, 0.5, 0.25),
        {},
        lambda v: _normal(np.log(np.asarray(v, np.float64)), 0.5, 0.25),
    ),
    ("aten.poisson.default", "", (3 * x_n,), {}, lambda k: _poisson(k, 3.0)),
    ("aten.multinomial.default", "", (w4, N, True), {}, lambda i: _categorical(i, w4)),
    (
        "aten.multinomial.default",
        "without",
        (jnp.tile(w4, (N // 4, 1)), 3),
        {},
        lambda i: _without_replacement(i, w4),
    ),
    (
        "aten.randperm.default",
        "",
        (50,),
        {},
        lambda p: np.testing.assert_array_equal(np.sort(p), np.arange(50)),
    ),
    ("aten.native_dropout.default", "", (x_n, 0.3, True), {}, lambda o: _dropout(o, 0.3)),
    (
        "aten.rrelu_with_noise_functional.default",
        "",
        (-x_n, x_n, 0.1, 0.3, True),
        {},
        lambda o: _rrelu(o, 0.1, 0.3),
    ),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "check"),
    [pytest.param(n, a, k, c, id=f"{n}[{i}]" if i else n) for n, i, a, k, c in CASES],
)
def test_draws_follow_the_distribution(name: str, args: tuple, kwargs: dict, check) -> None:
    fn = TABLE[name]
    out = jax.jit(lambda key: fn(*args, **kwargs, key=key))(KEY)
    check(out)
    again = fn(*args, **kwargs, key=KEY)  # eager: the same key, the same draw (up to fusion)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(again), strict=True):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), 1e-5, 1e-5)
    other = fn(*args, **kwargs, key=jax.random.key(1))
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(other), strict=True)
    )


def test_every_random_op_has_a_case() -> None:
    assert RANDOM == {n for n, *_ in CASES}


def test_low_precision_uniform_never_reaches_one() -> None:
    """Drawn in the dtype itself: a float32 draw rounded to bfloat16 would reach 1."""
    u = TABLE["aten.rand.default"]([1 << 20], dtype=torch.bfloat16, key=KEY)
    assert u.dtype == jnp.bfloat16 and float(u.max()) < 1.0


def test_dropout_edges_follow_aten() -> None:
    """p = 1 drops everything (no division by zero); out of training it is the identity."""
    x = jnp.arange(1.0, 7.0)
    y, mask = TABLE["aten.native_dropout.default"](x, 1.0, True, key=KEY)
    assert not np.asarray(mask).any() and np.array_equal(np.asarray(y), np.zeros(6))
    y, mask = TABLE["aten.native_dropout.default"](x, 0.5, False, key=KEY)
    assert np.asarray(mask).all() and np.array_equal(np.asarray(y), np.asarray(x))


def test_rrelu_out_of_training_is_leaky_relu_at_the_mean_slope() -> None:
    x, noise = jnp.asarray([-2.0, 0.0, 3.0]), jnp.asarray([7.0, 7.0, 7.0])
    y, kept = TABLE["aten.rrelu_with_noise_functional.default"](x, noise, 0.1, 0.3, False, key=KEY)
    np.testing.assert_allclose(np.asarray(y), [-0.4, 0.0, 3.0], rtol=1e-6)
    assert kept is noise


def test_random_ops_vmap_over_keys() -> None:
    keys = jax.random.split(KEY, 8)
    draws = jax.vmap(lambda k: TABLE["aten.randn.default"]([4], key=k))(keys)
    assert draws.shape == (8, 4) and len({tuple(np.asarray(d)) for d in draws}) == 8

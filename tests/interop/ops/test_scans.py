"""Scans through ``interop.lower`` against torch: low precision accumulated in float32 as torch's
CPU scans do, the running max / min's NaNs and ties, log-sum-exp at infinities, integer and
boolean sums, 0-d inputs, gradients and a symbolic batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from tests.interop.ops.lowering_fn import Fn, lowered

nan, inf = float("nan"), float("inf")


def _close(got, want, rtol=1e-6, atol=1e-6) -> None:
    got = got if isinstance(got, (tuple, list)) else (got,)
    want = want if isinstance(want, (tuple, list)) else (want,)
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g)
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(g.astype(np.float64), w.double().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("op", [torch.cumsum, torch.cumprod, torch.logcumsumexp])
def test_low_precision_accumulates_in_float32_like_torch(op, dtype) -> None:
    # a running sum of 400 values near 1: accumulated in bfloat16 it stalls (each step is
    # below half an ulp of the sum); torch's kernel accumulates in float32
    g = torch.Generator().manual_seed(0)
    x = (1 + 0.01 * torch.randn(2, 400, generator=g)).to(dtype)
    if op is torch.cumprod:
        x = (1 + 0.001 * torch.randn(2, 400, generator=g)).to(dtype)
    got, want = lowered(lambda a: op(a, 1), x)
    assert np.asarray(got).dtype == np.dtype(jnp.dtype(str(dtype).removeprefix("torch.")))
    # one rounding to the low precision apart at most
    _close(got, want.float(), rtol=2**-7 if dtype == torch.bfloat16 else 2**-10)


def test_integer_and_boolean_sums_are_int64_as_torch_has_them() -> None:
    x = torch.tensor([[True, False, True], [True, True, True]])
    got, want = lowered(
        lambda a: (a.cumsum(1), a.long().cumprod(1) * 3, a.cumsum(0, dtype=torch.float16)), x
    )
    _close(got, want)
    assert [np.asarray(v).dtype for v in got] == [np.int32, np.int32, np.float16]  # int64 narrowed


running = torch.tensor([
    [1.0, 3.0, 3.0, 2.0, nan, 5.0, nan, 1.0],
    [-0.0, 0.0, -1.0, -1.0, inf, -inf, inf, 0.5],
])  # fmt: skip


@pytest.mark.parametrize("op", [torch.cummax, torch.cummin])
@pytest.mark.parametrize("dim", [1, 0])
def test_running_max_and_min_take_nans_and_the_latest_of_ties_like_torch(op, dim) -> None:
    got, want = lowered(lambda a: op(a, dim), running)
    np.testing.assert_array_equal(np.asarray(got[0]), want.values.numpy())
    np.testing.assert_array_equal(np.asarray(got[1]), want.indices.numpy())


def test_logcumsumexp_at_infinities() -> None:
    x = torch.tensor(
        [[-inf, -inf, 0.0, inf, 1.0], [inf, inf, -inf, 2.0, nan], [-1e30, 1e30, 0.0, -inf, 3.0]]
    )
    got, want = lowered(lambda a: torch.logcumsumexp(a, 1), x)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a.cumsum(0),
        lambda a: a.cumprod(0),
        lambda a: a.logcumsumexp(0),
        lambda a: torch.cummax(a, 0),
        lambda a: torch.cummin(a, -1),
    ],
    ids=["cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"],
)
def test_a_0d_input(fn) -> None:
    got, want = lowered(fn, torch.tensor(-1.5))
    _close(got, want)


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a.cumprod(1),
        lambda a: a.logcumsumexp(1),
        lambda a: torch.cummax(a, 1).values,
        lambda a: torch.cummin(a, 0).values,
    ],
    ids=["cumprod", "logcumsumexp", "cummax", "cummin"],
)
def test_gradients_match_torch_autograd(fn) -> None:
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(1)) + 0.5
    forward, params = interop.lower(Fn(fn), (x,), dynamic_batch=False)
    weights = np.linspace(-1, 2, x.numel(), dtype=np.float32).reshape(x.shape)
    grad = jax.jit(jax.grad(lambda a: (forward(params, (a,)) * weights).sum()))
    t = x.clone().requires_grad_()
    (fn(t) * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(grad(jnp.asarray(x.numpy())), t.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_a_symbolic_batch() -> None:
    def fn(a):
        return a.cumprod(1), torch.cummax(a, 1), a.logcumsumexp(-1), a.cumsum(0)

    module = Fn(fn)
    forward, params = interop.lower(module, torch.randn(3, 5), dynamic_batch=True)
    for batch in (2, 7):
        x = torch.randn(batch, 5)
        got = jax.jit(forward)(params, interop.to_jax(x))
        with torch.no_grad():
            want = module(x)
        _close(jax.tree.leaves(got), [want[0], *want[1], want[2], want[3]], rtol=1e-5)

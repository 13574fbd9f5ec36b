"""Elementwise math and special functions through ``interop.lower``: torch's values at the edges
(zeros of either sign, poles, infinities, NaN), low precision computed as torch computes it,
Python scalars kept weak, the int64 policy without ``jax_enable_x64``, and gradients."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from tests.interop.ops.lowering_fn import Fn

_g = torch.Generator().manual_seed(0)
EDGES = torch.tensor(
    [0.0, -0.0, 1.0, -1.0, -2.0, 0.5, -0.5, -2.5, 3.0, 1e-30, -7.25, math.inf, -math.inf, math.nan]
)


def lowered(fn, *xs: torch.Tensor, dynamic_batch: bool = False):
    forward, params = interop.lower(Fn(fn), xs, dynamic_batch=dynamic_batch)
    return lambda *ys: jax.jit(forward)(params, tuple(interop.to_jax(y, downcast=True) for y in ys))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.float().numpy() if t.dtype in (torch.bfloat16, torch.float16) else t.numpy()


def _same(got, want: torch.Tensor, rtol: float = 1e-5) -> None:
    got = np.asarray(got)
    assert got.dtype == interop.to_jax(want, copy=True, downcast=True).dtype
    g, w = got.astype(np.float64), _np(want).astype(np.float64)
    assert (np.isnan(g) == np.isnan(w)).all(), (g, w)
    assert (np.isinf(g) == np.isinf(w)).all() and (g[np.isinf(g)] == w[np.isinf(w)]).all(), (g, w)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-30)


UNARY = {
    "digamma": torch.digamma,
    "lgamma": torch.lgamma,
    "trigamma": lambda x: torch.polygamma(1, x),
    "polygamma2": lambda x: torch.polygamma(2, x),
    "polygamma3": lambda x: torch.polygamma(3, x),
    "angle": torch.angle,
    "signbit": torch.signbit,
    "round-2": lambda x: torch.round(x * 100, decimals=2),
    "round--1": lambda x: torch.round(x * 100, decimals=-1),
    "frexp": lambda x: torch.stack([torch.frexp(x)[0], torch.frexp(x)[1].float()]),
    "copysign": lambda x: torch.copysign(x.flip(0), x),
    "fmax": lambda x: torch.fmax(x, x.flip(0)),
    "nextafter": lambda x: torch.nextafter(x, x.flip(0)),
    "atan2": lambda x: torch.atan2(x, x.flip(0)),
    "hypot": lambda x: torch.hypot(x, x.flip(0)),
    "erfinv": lambda x: torch.erfinv(x / 8),
    "i0e": torch.special.i0e,
    "zeta": lambda x: torch.special.zeta(x.abs() + 1, x),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_edge_values_are_torchs(name: str) -> None:
    """±0, poles, negative integers, infinities and NaN give torch's value (inf of the right
    sign, NaN where torch has NaN), the rest within float32 rounding."""
    fn = UNARY[name]
    rtol = 1e-4 if name.startswith("polygamma") else 1e-5
    _same(lowered(fn, EDGES)(EDGES), fn(EDGES), rtol=rtol)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "fn", [torch.acos, torch.lgamma, torch.erfinv, torch.log10, torch.sinh, torch.special.i1e]
)
def test_low_precision_is_computed_in_float32_and_rounded_once(fn, dtype) -> None:
    """torch's CPU kernels compute bfloat16 / float16 in float32 and round once: the lowering
    does the same, so the result is torch's to the last bit but for float32 rounding ties."""
    x = (torch.rand(64, generator=_g) * 0.9 + 0.05).to(dtype)
    got = np.asarray(lowered(fn, x)(x))
    want = fn(x)
    assert got.dtype == interop.to_jax(want).dtype
    ulp = np.abs(got.astype(np.float64) - _np(want).astype(np.float64))
    step = float(torch.finfo(dtype).eps) * np.abs(_np(want).astype(np.float64))
    assert (ulp <= step + 1e-30).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_python_scalars_stay_weakly_typed(dtype) -> None:
    """A bf16 / f16 tensor with Python floats stays bf16 / f16, with torch's values."""

    def fn(x):
        return torch.clamp(x * 0.1 + 3, max=3.25) - torch.hypot(x, torch.tensor(0.5))

    x = torch.randn(16, generator=_g).to(dtype)
    got = lowered(fn, x)(x)
    assert got.dtype == interop.to_jax(x).dtype
    torch.testing.assert_close(torch.from_numpy(np.asarray(got, np.float32)), fn(x).float())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_division_in_low_precision_rounds_once_as_torch(dtype) -> None:
    """torch's CPU kernel divides bfloat16 / float16 in float32 (a Python divisor unrounded)
    and rounds once; XLA multiplied a float16 by the rounded reciprocal of a constant (a third
    of x / 3.0 was 1 ulp off), and rounded 0.1 to the dtype before dividing."""

    def fn(x, y):
        return torch.stack([x / 3.0, x / 0.1, x / y, torch.div(x, 7.0, rounding_mode=None)])

    x, y = (torch.randn(4096, generator=_g).to(dtype) for _ in range(2))
    got = np.asarray(lowered(fn, x, y)(x, y))
    assert got.dtype == interop.to_jax(x).dtype
    np.testing.assert_array_equal(got.astype(np.float32), _np(fn(x, y)))


def test_int64_scalar_beyond_int32_is_refused_naming_x64() -> None:
    ids = torch.arange(6)
    with pytest.raises(interop.LoweringError, match="jax_enable_x64") as info:
        interop.lower(Fn(lambda i: (i + 2**40) >> 3), ids, dynamic_batch=False)
    assert "aten.add.Tensor" in str(info.value) and "1099511627776" in str(info.value)


def test_int64_with_x64_is_exact() -> None:
    ids = torch.arange(6)

    def fn(i):
        return ((i + 2**40) >> 3) * 3 - (i << 35)

    with jax.enable_x64(True):
        got = lowered(fn, ids)(ids)
        assert got.dtype == jnp.int64
        np.testing.assert_array_equal(np.asarray(got), fn(ids).numpy())


def test_int64_buffer_beyond_int32_is_refused_naming_x64() -> None:
    module = Fn(lambda i: i)
    module.register_buffer("offset", torch.tensor([2**40]))
    module.fn = lambda i: i + module.offset
    with pytest.raises(interop.LoweringError, match=r"'offset'.*jax_enable_x64"):
        interop.lower(module, torch.arange(3), dynamic_batch=False)


def test_big_python_int_beside_float_and_int32_is_torchs() -> None:
    """A Python int beyond int32 (which JAX without x64 cannot take) beside a float tensor is
    the float torch makes of it; beside an int32 tensor it wraps as torch's cast does."""
    x, i = torch.randn(5, generator=_g), torch.arange(5, dtype=torch.int32)

    def fn(x, i):
        return x * 2**40 - 2**35, i + (2**40 + 7), i * (2**33 + 3)

    got = lowered(fn, x, i)(x, i)
    for g, w in zip(got, fn(x, i), strict=True):
        _same(g, w)


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int16])
def test_shifts_past_the_width_are_torchs(dtype) -> None:
    a = torch.tensor([1, 5, 100, 127, 3, 9, 64, 17], dtype=dtype)
    a = -a if dtype.is_signed else a
    b = torch.tensor([0, 1, 3, 7, 8, 15, 31, 40], dtype=dtype)

    def fn(a, b):
        return a << b, a >> b, a >> 2, 3 << b

    for g, w in zip(lowered(fn, a, b)(a, b), fn(a, b), strict=True):
        np.testing.assert_array_equal(np.asarray(g), w.numpy())


def test_integer_and_bool_operands_are_torchs() -> None:
    """Integer powers with negative exponents (torch: 1, ±1 or 0), a float base over integer
    exponents (a float result), sign and shifts of bools, xlogy by a Python number."""
    i = torch.tensor([2, -1, 1, -1, 0, 3, -2, 5], dtype=torch.int32)
    e = torch.tensor([-1, -3, -5, -2, -1, 3, 3, 0], dtype=torch.int32)
    b = torch.tensor([True, False, True, True, False, False, True, False])
    x = torch.randn(8, generator=_g)

    def fn(i, e, b, x):
        shifted = torch.bitwise_left_shift(b, 2), torch.bitwise_right_shift(b, e.abs())
        return i**e, 2.5**e, 2 ** e.abs(), torch.sign(b), *shifted, torch.xlogy(x.abs(), 2)

    got = lowered(fn, i, e, b, x)(i, e, b, x)
    for g, w in zip(got, fn(i, e, b, x), strict=True):
        if w.is_floating_point():
            _same(g, w)
        else:
            np.testing.assert_array_equal(np.asarray(g), w.numpy())
            assert np.asarray(g).dtype == interop.to_jax(w, downcast=True).dtype


GRADS = {
    "acos": lambda x, y: torch.acos(x.tanh() * 0.9),
    "atan2": torch.atan2,
    "hypot": torch.hypot,
    "lgamma": lambda x, y: torch.lgamma(x.abs() + 0.5),
    "digamma": lambda x, y: torch.digamma(x.abs() + 0.5),
    "erfinv": lambda x, y: torch.erfinv(x.tanh() * 0.9),
    "xlogy-sinh": lambda x, y: torch.xlogy(x, y.abs() + 0.1) + torch.sinh(y),
    "copysign-fmax": lambda x, y: torch.copysign(x, y) * torch.fmax(x, y),
    "i0e-logaddexp": lambda x, y: torch.special.i0e(x) + torch.logaddexp(x, y),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients_match_torch_autograd(name: str) -> None:
    fn = GRADS[name]
    x, y = torch.randn(3, 5, generator=_g), torch.randn(3, 5, generator=_g)
    forward, params = interop.lower(Fn(fn), (x, y))
    gx, gy = jax.grad(lambda a, b: jnp.sum(forward(params, (a, b))), argnums=(0, 1))(
        jnp.asarray(x.numpy()), jnp.asarray(y.numpy())
    )
    xt, yt = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    fn(xt, yt).sum().backward()
    for got, t in ((gx, xt), (gy, yt)):
        want = np.zeros(t.shape, np.float32) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)

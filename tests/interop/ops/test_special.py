"""``torch.special``'s Bessel and Airy functions and orthogonal polynomials through
``interop.lower``: torch's values on a grid crossing every branch of its kernels (the
thresholds where the approximation changes, 0, ±1, negative and non-finite arguments and
degrees, degrees past the closed-form thresholds), under ``jax.jit``."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
import torch

import interop
from tests.interop.ops.lowering_fn import Fn

_EDGES = [-200.0, -5.0, -2.09, -2.0, -1e-6, 0.0, -0.0, 1e-6, 1.9, 2.0, 2.09, 5.0, 5.01]
_EDGES += [7.9, 8.0, 8.1, 8.4, 103.0, 104.0, math.inf, -math.inf, math.nan]
BESSEL_X = torch.cat([torch.tensor(_EDGES), torch.linspace(-30, 30, 241)])

BESSEL = [
    "bessel_j0",
    "bessel_j1",
    "bessel_y0",
    "bessel_y1",
    "modified_bessel_i0",
    "modified_bessel_i1",
    "modified_bessel_k0",
    "modified_bessel_k1",
    "scaled_modified_bessel_k0",
    "scaled_modified_bessel_k1",
    "spherical_bessel_j0",
    "airy_ai",
]

_X = [-3.0, -1.0, -0.999, -0.5, -1e-9, 0.0, 1e-9, 0.3, 0.5, 0.9999, 1.0, 1.5, math.nan]
_N = [-2.0, 0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 9.0, 12.0, 30.0, 129.0, 2.7, math.nan, math.inf]
POLY_X, POLY_N = torch.meshgrid(torch.tensor(_X), torch.tensor(_N), indexing="ij")
POLYNOMIALS = [f"{s}chebyshev_polynomial_{k}" for s in ("", "shifted_") for k in "tuvw"]
POLYNOMIALS += [
    "hermite_polynomial_h",
    "hermite_polynomial_he",
    "laguerre_polynomial_l",
    "legendre_polynomial_p",
]


def _run(fn, *xs: torch.Tensor) -> np.ndarray:
    forward, params = interop.lower(Fn(fn), xs, dynamic_batch=False)
    return np.asarray(jax.jit(forward)(params, tuple(interop.to_jax(x) for x in xs)))


def _assert_torchs(got: np.ndarray, want: np.ndarray, atol: float) -> None:
    assert got.dtype == want.dtype
    assert (np.isnan(got) == np.isnan(want)).all()
    assert (got[np.isinf(want)] == want[np.isinf(want)]).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("name", BESSEL)
def test_bessel_and_airy_are_torchs(name: str) -> None:
    fn = getattr(torch.special, name)
    # Ai's asymptotic phase far below 0 is ~100 rad: a float32 ulp there is ~1e-6 in Ai
    _assert_torchs(_run(fn, BESSEL_X), fn(BESSEL_X).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomials_are_torchs(name: str) -> None:
    fn = getattr(torch.special, name)
    _assert_torchs(_run(fn, POLY_X, POLY_N), fn(POLY_X, POLY_N).numpy(), atol=1e-4)
    # a degree past the closed-form threshold of every kind, given as a Python int
    got = _run(lambda x: fn(x, 11), POLY_X[:, 0])
    _assert_torchs(got, fn(POLY_X[:, 0], 11).numpy(), atol=1e-4)

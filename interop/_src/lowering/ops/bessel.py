"""Bessel and Airy functions of ``torch.special``: J0, J1, Y0, Y1, the modified I0, I1, K0, K1
(and K0, K1 scaled by ``exp(x)``), the spherical j0 and Airy Ai.

Each is torch's kernel (``ATen/native/Math.h``, from Cephes) in the same float operations:
its branches (rational approximations near 0, asymptotic expansions far out, Chebyshev
series in between), evaluated together and selected per element, with the coefficients of
``bessel_tables``, and its values at 0, below 0, at infinity and NaN.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops import bessel_tables as t
from interop._src.lowering.ops._helpers import unary

_SQRT_2_OVER_PI = 0.797884560802865355879892119868763737
_TWO_OVER_PI = 0.636619772367581343075535053490057448


def _horner(coeffs, z):
    acc = jnp.zeros_like(z)
    for c in coeffs:
        acc = acc * z + c
    return acc


def _chbevl(coeffs, y):
    """Clenshaw's sum of a Chebyshev series at ``y``, halved as torch's loops leave it."""
    p = q = jnp.zeros_like(y)
    a = jnp.full_like(y, coeffs[0])
    for c in coeffs[1:]:
        p, q = q, a
        a = y * q - p + c
    return 0.5 * (a - p)


def _far(x, w, phase, p, q, sin_first):
    """The asymptotic form of J0 / J1 / Y0 / Y1 beyond 5 (``w`` is torch's ``25 / x²``)."""
    pp = _horner(p[0], w) / _horner(p[1], w)
    qq = _horner(q[0], w) / _horner(q[1], w)
    c, s = jnp.cos(x - phase), jnp.sin(x - phase)
    if sin_first:
        return (pp * s + 5.0 / x * qq * c) * _SQRT_2_OVER_PI / jnp.sqrt(x)
    return (pp * c - 5.0 / x * qq * s) * _SQRT_2_OVER_PI / jnp.sqrt(x)


_J0_PQ = ((t.BESSEL_J0_PP, t.BESSEL_J0_PQ), (t.BESSEL_J0_QP, t.BESSEL_J0_QQ))
_J1_PQ = ((t.BESSEL_J1_PP, t.BESSEL_J1_PQ), (t.BESSEL_J1_QP, t.BESSEL_J1_QQ))


def _j0(x):
    x = jnp.abs(x)
    z = x * x
    near = (z - 5.78318596294678452118) * (z - 30.4712623436620863991)
    near = near * _horner(t.BESSEL_J0_RP, z) / _horner(t.BESSEL_J0_RQ, z)
    near = jnp.where(x < 0.00001, 1.0 - z / 4.0, near)
    far = _far(x, 25.0 / z, math.pi / 4, *_J0_PQ, sin_first=False)
    return jnp.where(x <= 5.0, near, far)


def _j1(x):
    a = jnp.abs(x)
    z = a * a
    near = _horner(t.BESSEL_J1_RP, z) / _horner(t.BESSEL_J1_RQ, z) * a
    near = near * (z - 14.6819706421238932572) * (z - 49.2184563216946036703)
    w = 5.0 / a * (5.0 / a)
    out = jnp.where(a <= 5.0, near, _far(a, w, 3 * math.pi / 4, *_J1_PQ, sin_first=False))
    return jnp.where(x < 0, -out, out)


def _edges(x, out, at_zero):
    """torch's values below the domain (NaN) and at 0 for Y0, Y1, K0, K1."""
    return jnp.where(x == 0, at_zero, jnp.where(x < 0, jnp.nan, out))


def _y0(x):
    z = x * x
    near = _horner(t.BESSEL_Y0_YP, z) / _horner(t.BESSEL_Y0_YQ, z)
    near = near + _TWO_OVER_PI * jnp.log(x) * _j0(x)
    far = _far(x, 25.0 / z, math.pi / 4, *_J0_PQ, sin_first=True)
    return _edges(x, jnp.where(x <= 5.0, near, far), -jnp.inf)


def _y1(x):
    z = x * x
    near = x * (_horner(t.BESSEL_Y1_YP, z) / _horner(t.BESSEL_Y1_YQ, z))
    near = near + _TWO_OVER_PI * (_j1(x) * jnp.log(x) - 1.0 / x)
    far = _far(x, 5.0 / x * (5.0 / x), 3 * math.pi / 4, *_J1_PQ, sin_first=True)
    return _edges(x, jnp.where(x <= 5.0, near, far), -jnp.inf)


def _i0(x):
    a = jnp.abs(x)
    near = jnp.exp(a) * _chbevl(t.MODIFIED_BESSEL_I0_A, a / 2.0 - 2.0)
    far = jnp.exp(a) * _chbevl(t.MODIFIED_BESSEL_I0_B, 32.0 / a - 2.0) / jnp.sqrt(a)
    return jnp.where(a <= 8.0, near, far)


def _i1(x):
    a = jnp.abs(x)
    near = _chbevl(t.MODIFIED_BESSEL_I1_A, a / 2.0 - 2.0) * a * jnp.exp(a)
    far = jnp.exp(a) * _chbevl(t.MODIFIED_BESSEL_I1_B, 32.0 / a - 2.0) / jnp.sqrt(a)
    out = jnp.where(a <= 8.0, near, far)
    return jnp.where(x < 0, -out, out)


def _k(x, order, scaled):
    """K0 / K1, times ``exp(x)`` when ``scaled``: a series with I0 / I1 below 2, beyond it
    ``exp(-x) * chbevl(B, 8 / x - 2) / sqrt(x)``."""
    a_tab, b_tab = (
        (t.MODIFIED_BESSEL_K0_A, t.MODIFIED_BESSEL_K0_B)
        if order == 0
        else (t.MODIFIED_BESSEL_K1_A, t.MODIFIED_BESSEL_K1_B)
    )
    series = _chbevl(a_tab, x * x - 2.0)
    log = jnp.log(0.5 * x)
    near = series - log * _i0(x) if order == 0 else log * _i1(x) + series / x
    far = _chbevl(b_tab, 8.0 / x - 2.0) / jnp.sqrt(x)
    if scaled:
        near = near * jnp.exp(x)
    else:
        far = jnp.exp(-x) * far
    return _edges(x, jnp.where(x <= 2.0, near, far), jnp.inf)


def _spherical_j0(x):
    z = x * x
    series = jnp.full_like(x, 1.0 / 6227020800.0)
    for c in (-39916800.0, 362880.0, -5040.0, 120.0, -6.0):
        series = 1.0 / c + z * series
    near = 1.0 + z * series
    out = jnp.where(jnp.abs(x) < 0.5, near, jnp.sin(x) / x)
    return jnp.where(jnp.isinf(x), 0.0, out)


def _airy_series(x):
    """Ai's power series, summed per element until its term is below float32's epsilon."""
    eps = float(jnp.finfo(x.dtype).eps)
    z = x * x * x
    one = jnp.ones_like(x)

    def body(s):
        f, g, k, m, n, live = s
        m2 = m * z
        k2 = k + 1.0
        m2 = m2 / k2
        n2 = n * z
        k2 = k2 + 1.0
        n2 = n2 / k2
        m2 = m2 / k2
        f2 = f + m2
        k2 = k2 + 1.0
        n2 = n2 / k2
        g2 = g + n2
        new = (f2, g2, k2, m2, n2)
        f, g, k, m, n = (jnp.where(live, b, a) for a, b in zip((f, g, k, m, n), new, strict=True))
        return f, g, k, m, n, live & (jnp.abs(m2 / f2) > eps)

    state = (one, x, one, one, x, (x >= -2.09) & (x < 2.09))
    f, g, *_ = lax.while_loop(lambda s: jnp.any(s[-1]), body, state)
    return 0.355028053887817239260 * f - 0.258819403792806798405 * g


def _airy_ai(x):
    root = jnp.sqrt(jnp.abs(x))
    z = 1.0 / (-2.0 * x * root / 3.0)
    afn, afd = _horner(t.AIRY_AI_AFN, z * z), _horner(t.AIRY_AI_AFD, z * z)
    agn, agd = _horner(t.AIRY_AI_AGN, z * z), _horner(t.AIRY_AI_AGD, z * z)
    phase = -2.0 * x * root / 3.0 + 0.25 * math.pi
    below = jnp.sin(phase) * (1.0 + z * z * afn / afd) - jnp.cos(phase) * (z * agn / agd)
    below = 5.64189583547756286948e-01 / jnp.sqrt(root) * below
    zeta = 2.0 * x * root / 3.0
    above = _horner(t.AIRY_AI_AN, 1.0 / zeta) / _horner(t.AIRY_AI_AD, 1.0 / zeta)
    above = 5.64189583547756286948e-01 * above / (2.0 * jnp.sqrt(root) * jnp.exp(zeta))
    out = jnp.where(x < -2.09, below, jnp.where(x >= 2.09, above, _airy_series(x)))
    return jnp.where(jnp.isinf(x), jnp.nan, jnp.where(x > 103.892, 0.0, out))


for _name, _fn in {
    "bessel_j0": _j0,
    "bessel_j1": _j1,
    "bessel_y0": _y0,
    "bessel_y1": _y1,
    "modified_bessel_i0": _i0,
    "modified_bessel_i1": _i1,
    "modified_bessel_k0": lambda x: _k(x, 0, False),
    "modified_bessel_k1": lambda x: _k(x, 1, False),
    "scaled_modified_bessel_k0": lambda x: _k(x, 0, True),
    "scaled_modified_bessel_k1": lambda x: _k(x, 1, True),
    "spherical_bessel_j0": _spherical_j0,
    "airy_ai": _airy_ai,
}.items():
    unary(f"special_{_name}", _fn)

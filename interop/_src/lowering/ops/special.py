"""Special functions (``torch.special`` and their ATen names): the gamma family (lgamma, digamma,
polygamma, Hurwitz zeta, incomplete gamma), modified Bessel functions, ndtri and erfcx.

Each computes in float32 for integer and low-precision inputs, as torch's CPU kernels do
(``_helpers.fl``), with torch's values at the poles and edges where ``jax.scipy.special``
differs (``digamma(±0)``, ``polygamma(n, x)`` at the non-positive integers, ``zeta(x, q)`` at
``q`` a non-positive integer).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax
from jax.scipy import special as jsp

from interop._src.lowering.ops._helpers import fl, unary
from interop._src.lowering.ops.registry import op


@op("aten.lgamma.default")
def lgamma(x):
    x = fl(x)
    # exactly 0 at 1 and 2, as torch's (libm's) lgamma; XLA's approximation is off by an ulp
    return jnp.where((x == 1) | (x == 2), 0.0, jsp.gammaln(x)).astype(x.dtype)


@op("aten.digamma.default")
def digamma(x):
    x = fl(x)
    # torch: digamma(±0) = ∓inf (the pole's sign from the side of zero); JAX gives NaN
    return jnp.where(x == 0, jnp.copysign(jnp.inf, -x), jsp.digamma(x))


def _trigamma(x):
    """torch's ``calc_trigamma``: reflection below 1/2, six recurrence steps, then the
    asymptotic series (finite near the poles where the reflection's sine is not exactly 0)."""
    small = x < 0.5
    s = jnp.sin(math.pi * x)
    result = jnp.where(small, -(math.pi**2) / (s * s), 0.0)
    x = jnp.where(small, 1 - x, x)
    for _ in range(6):
        result = result + 1 / (x * x)
        x = x + 1
    ixx = 1 / (x * x)
    series = (1 + 1 / (2 * x) + ixx * (1.0 / 6 - ixx * (1.0 / 30 - ixx * (1.0 / 42)))) / x
    return jnp.where(small, -1.0, 1.0) * (result + series)


def _zeta(x, q):
    """Hurwitz zeta with torch's values (Cephes, as torch's ``zeta``): inf at ``x == 1`` and at
    ``q`` a non-positive integer, NaN for ``x < 1`` and for a negative ``q`` with ``x`` not an
    integer; a negative ``q`` otherwise summed up to positive ``q``, as torch's loop does
    (``jax.scipy.special.zeta`` is wrong below ``q = -1``)."""
    x, q = jnp.broadcast_arrays(x, q)
    shift = (q < 0) & (q != jnp.floor(q)) & (x == jnp.floor(x))

    def body(state):
        acc, qq = state
        step = shift & (qq < 0)
        return acc + jnp.where(step, jnp.power(qq, -x), 0.0), jnp.where(step, qq + 1, qq)

    acc, qq = lax.while_loop(lambda s: jnp.any(shift & (s[1] < 0)), body, (jnp.zeros_like(q), q))
    z = acc + jsp.zeta(x, qq)
    z = jnp.where((q < 0) & ~shift, jnp.nan, z)
    z = jnp.where((q <= 0) & (q == jnp.floor(q)), jnp.inf, z)
    return jnp.where(x == 1, jnp.inf, jnp.where(x < 1, jnp.nan, z))


@op("aten.polygamma.default")
def polygamma(n, x):
    x = fl(x)
    if n == 0:
        return digamma(x)
    if n == 1:
        return _trigamma(x)
    # torch: (-1)^(n+1) n! zeta(n+1, x)
    return (1.0 if n % 2 else -1.0) * math.exp(math.lgamma(n + 1.0)) * _zeta(n + 1.0, x)


@op("aten.special_zeta.default", "aten.special_zeta.self_scalar", "aten.special_zeta.other_scalar")
def zeta(x, q):
    if not hasattr(x, "dtype"):
        x = jnp.asarray(x, fl(q).dtype)
    if not hasattr(q, "dtype"):
        q = jnp.asarray(q, fl(x).dtype)
    return _zeta(fl(x), fl(q))


@op("aten.igamma.default")
def igamma(a, x):
    return jsp.gammainc(fl(a), fl(x))


@op("aten.igammac.default")
def igammac(a, x):
    return jsp.gammaincc(fl(a), fl(x))


for _name, _fn in {
    "i0": jsp.i0,
    "special_i0e": jsp.i0e,
    "special_i1": jsp.i1,
    "special_i1e": jsp.i1e,
    "special_ndtri": jsp.ndtri,
    "special_erfcx": jsp.erfcx,
}.items():
    unary(_name, _fn)

"""The classical orthogonal polynomials of ``torch.special``: Chebyshev T, U, V, W (and their
shifted forms), Hermite H and He, Laguerre L, Legendre P, each ``p(x, n)`` with ``n`` a tensor.

Each follows torch's kernel (``ATen/native/Math.h``) case by case: 0 for ``n < 0`` (and for a
NaN or infinite ``n``, which torch's cast to int64 makes negative on x86), torch's values at
``x = ±1``, its closed forms in ``acos(x)`` above its thresholds of ``n``, and otherwise its
three-term recurrence in the same float operations. The recurrence's length depends on the
data, so it runs as one ``lax.while_loop`` to the largest ``n`` needing it, each element
keeping its value past its own ``n``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops._helpers import fl
from interop._src.lowering.ops.registry import op


def _operands(x, n):
    """``(x, n as float, n as int32)``: x float, ``n`` truncated, non-finite ``n`` as -1."""
    x = fl(jnp.asarray(x)) if hasattr(x, "dtype") else jnp.asarray(x, fl(jnp.asarray(n)).dtype)
    n = jnp.asarray(n)
    if jnp.issubdtype(n.dtype, jnp.floating):
        n = jnp.where(jnp.isfinite(n), jnp.trunc(n), -1.0)
    x, n = jnp.broadcast_arrays(x, n)
    ni = n.astype(jnp.int32)
    return x, ni.astype(x.dtype), ni


def _recurrence(q0, ni, step, needed):
    """``q_{j+1} = step(j, p_j, q_j)`` for ``j = 1 .. n - 1`` (``p_1 = 1``, ``q_1 = q0``),
    per element; the loop runs to the largest ``n`` among the ``needed`` elements."""
    last = jnp.max(jnp.where(needed, ni, 0), initial=0)
    p0 = jnp.ones_like(q0)

    def body(state):
        j, p, q = state
        r = step(j.astype(q.dtype), p, q)
        live = j < ni
        return j + 1, jnp.where(live, q, p), jnp.where(live, r, q)

    _, _, q = lax.while_loop(lambda s: s[0] < last, body, (jnp.int32(1), p0, q0))
    return q


def _pick(cases, otherwise):
    """``cases``: ``(mask, value)`` pairs, the first that holds wins, as torch's early returns."""
    out = otherwise
    for mask, value in reversed(cases):
        out = jnp.where(mask, value, out)
    return out


def _chebyshev(kind, y, nf, ni, *, plus, minus, above, shifted=False):
    """Chebyshev polynomial ``kind`` of ``y`` (``2x - 1`` for the shifted ones, which torch
    tests at ``x == 1`` / ``x == 0``: ``plus`` / ``minus``), closed form for ``n > above``."""
    even = ni % 2 == 0
    sign = jnp.where(even, 1.0, -1.0).astype(y.dtype)
    two_n1 = nf + nf + 1
    at_plus = {"t": 1.0, "u": nf + 1, "v": 1.0, "w": two_n1}[kind]
    at_minus = {"t": sign, "u": sign * (nf + 1), "v": sign * two_n1, "w": sign}[kind]
    theta = jnp.arccos(y)
    if kind == "t":
        closed = jnp.cos(nf * theta)
    elif kind == "u":
        s = jnp.sin(theta)
        closed = jnp.where(
            s != 0, jnp.sin((nf + 1) * theta) / s, (nf + 1) * jnp.cos((nf + 1) * theta) / y
        )
    elif kind == "v":
        closed = jnp.where(
            jnp.sin(theta / 2) != 1,
            jnp.cos((nf + 0.5) * theta) / jnp.cos(theta / 2),
            sign * two_n1,
        )
    else:
        edge = sign if shifted else jnp.where(y > 0, two_n1, sign)
        closed = jnp.where(
            jnp.cos(theta / 2) != 1, jnp.sin((nf + 0.5) * theta) / jnp.sin(theta / 2), edge
        )
    q1 = {"t": y, "u": y + y, "v": y + y - 1, "w": y + y + 1}[kind]
    use_closed = (ni > above) & (jnp.abs(y) < 1)
    plain = ~(plus | minus | use_closed) & (ni >= 2)
    rec = _recurrence(q1, ni, lambda j, p, q: (y + y) * q - p, plain)
    cases = [(ni < 0, 0.0), (plus, at_plus), (minus, at_minus), (use_closed, closed)]
    return _pick([*cases, (ni == 0, 1.0), (ni == 1, q1)], rec)


def _register_chebyshev(kind: str, above: int, shifted: bool) -> None:
    prefix = "shifted_chebyshev" if shifted else "chebyshev"
    name = f"aten.special_{prefix}_polynomial_{kind}"

    def lowered(x, n):
        x, nf, ni = _operands(x, n)
        y = x + x - 1 if shifted else x
        plus, minus = (x == 1, x == 0) if shifted else (y == 1, y == -1)
        out = _chebyshev(kind, y, nf, ni, plus=plus, minus=minus, above=above, shifted=shifted)
        return out.astype(x.dtype)

    lowered.__name__ = lowered.__qualname__ = f"{prefix}_polynomial_{kind}"
    op(f"{name}.default", f"{name}.x_scalar", f"{name}.n_scalar")(lowered)


for _kind, _plain, _shifted in (("t", 6, 6), ("u", 8, 6), ("v", 8, 6), ("w", 8, 4)):
    _register_chebyshev(_kind, _plain, False)
    _register_chebyshev(_kind, _shifted, True)


def _names(family: str) -> tuple[str, ...]:
    base = f"aten.special_{family}"
    return (f"{base}.default", f"{base}.x_scalar", f"{base}.n_scalar")


@op(*_names("hermite_polynomial_h"))
def hermite_polynomial_h(x, n):
    x, _, ni = _operands(x, n)
    q1 = x + x
    rec = _recurrence(q1, ni, lambda j, p, q: (x + x) * q - (j + j) * p, (ni >= 2) & (ni <= 128))
    cases = [(ni < 0, 0.0), (ni == 0, 1.0), (ni == 1, q1), (ni > 128, jnp.nan)]
    return _pick(cases, rec).astype(x.dtype)  # torch: NaN past 128 in float32


@op(*_names("hermite_polynomial_he"))
def hermite_polynomial_he(x, n):
    x, _, ni = _operands(x, n)
    rec = _recurrence(x, ni, lambda j, p, q: x * q - j * p, (ni >= 2) & (ni <= 128))
    cases = [(ni < 0, 0.0), (ni == 0, 1.0), (ni == 1, x), (ni > 128, jnp.nan)]
    return _pick(cases, rec).astype(x.dtype)


@op(*_names("laguerre_polynomial_l"))
def laguerre_polynomial_l(x, n):
    x, _, ni = _operands(x, n)
    q1 = 1 - x
    step = lambda j, p, q: (((j + j) + (1 - x)) * q - j * p) / (j + 1)  # noqa: E731
    rec = _recurrence(q1, ni, step, (ni >= 2) & (x != 0))
    cases = [(ni < 0, 0.0), (x == 0, 1.0), (ni == 0, 1.0), (ni == 1, q1)]
    return _pick(cases, rec).astype(x.dtype)


@op(*_names("legendre_polynomial_p"))
def legendre_polynomial_p(x, n):
    x, _, ni = _operands(x, n)
    step = lambda j, p, q: ((j + j + 1) * x * q - j * p) / (j + 1)  # noqa: E731
    rec = _recurrence(x, ni, step, (ni >= 2) & (jnp.abs(x) != 1))
    sign = jnp.where((x > 0) | (ni % 2 == 0), 1.0, -1.0)
    cases = [(ni < 0, 0.0), (jnp.abs(x) == 1, sign), (ni == 0, 1.0), (ni == 1, x)]
    return _pick(cases, rec).astype(x.dtype)

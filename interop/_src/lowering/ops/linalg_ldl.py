"""LDL^T with Bunch-Kaufman pivoting, as LAPACK's ``sytf2`` / ``sytrs`` (``uplo="L"``), which
torch's ``linalg.ldl_factor`` / ``ldl_solve`` call and JAX lacks.

``LD`` holds the unit lower factor below the diagonal and the 1x1 / 2x2 blocks of D on and
beside it (upper triangle zero); ``pivots`` are LAPACK's: 1-based, ``k`` for a 1x1 block whose
row was swapped with row ``k``, ``-k`` on both rows of a 2x2 block. ``info`` is the 1-based
index of the first exactly-zero 1x1 block. Each step is a ``lax.while_loop`` iteration (a
block is one or two columns), written with masks so that every shape is static; batches are
``vmap``-ed. Real matrices only (symmetric and Hermitian are then the same): torch's complex
symmetric / Hermitian variants are refused.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
from jax import lax

from interop._src.lowering.ops.linalg_decompositions import broadcast_batch, float32_only
from interop._src.lowering.ops.registry import op

#: Bunch-Kaufman's threshold, (1 + sqrt(17)) / 8, as LAPACK's ALPHA
_ALPHA = (1 + 17**0.5) / 8


def _real_only(node: torch.fx.Node) -> str | None:
    val = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
    if isinstance(val, torch.Tensor) and val.is_complex():
        return "a complex matrix (LAPACK's complex sytrf / hetrf are not lowered)"
    return float32_only(node)


def _batched(fn, core: int, *xs):
    """``fn`` vmapped over the batch axes of ``xs`` (all but the last ``core`` of the first)."""
    for _ in range(xs[0].ndim - core):
        fn = jax.vmap(fn)
    return fn(*xs)


def _swap(x, i, j, axis):
    """``x`` with entries ``i`` and ``j`` of ``axis`` exchanged (traced indices)."""
    idx = jnp.arange(x.shape[axis])
    perm = jnp.where(idx == i, j, jnp.where(idx == j, i, idx))
    return jnp.take(x, perm, axis=axis)


def _pivot(W, k, n):
    """Bunch-Kaufman's choice at column ``k``: ``(kp, kstep, zero)`` as LAPACK's ``sytf2``."""
    rows = jnp.arange(n)
    absakk = jnp.abs(W[k, k])
    below = jnp.where(rows > k, jnp.abs(W[:, k]), -1.0)
    imax = jnp.argmax(below)
    colmax = jnp.maximum(below[imax], 0.0)
    zero = (jnp.maximum(absakk, colmax) == 0) | jnp.isnan(absakk)
    rowmax = jnp.max(jnp.where((rows >= k) & (rows != imax), jnp.abs(W[imax, :]), 0.0))
    one = (absakk >= _ALPHA * colmax) | (absakk >= _ALPHA * colmax * (colmax / rowmax))
    at_imax = jnp.abs(W[imax, imax]) >= _ALPHA * rowmax
    kp = jnp.where(zero | one, k, imax)
    kstep = jnp.where(zero | one | at_imax, 1, 2)
    return kp, kstep, zero


def _factor_one(A):
    n = A.shape[-1]
    rows = jnp.arange(n)
    W = jnp.tril(A) + jnp.tril(A, -1).T  # LAPACK reads the lower triangle

    def step(state):
        W, piv, info, k = state
        kp, kstep, zero = _pivot(W, k, n)
        kk = k + kstep - 1
        # the symmetric interchange of kk and kp, in the trailing block only
        trail = (rows[:, None] >= k) & (rows[None, :] >= k)
        W = jnp.where(trail, _swap(_swap(W, kk, kp, 0), kk, kp, 1), W)
        W = jnp.where(zero, W, jnp.where(kstep == 1, _rank1(W, k, rows), _rank2(W, k, rows)))
        info = jnp.where((info == 0) & zero, k + 1, info)
        p = jnp.where(kstep == 1, kp + 1, -(kp + 1)).astype(jnp.int32)
        piv = piv.at[k].set(p)
        k1 = jnp.minimum(k + 1, n - 1)  # a 2x2 block's second row (never past the end)
        piv = piv.at[k1].set(jnp.where(kstep == 2, p, piv[k1]))
        return W, piv, info, k + kstep

    init = (W, jnp.zeros(n, jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    W, piv, info, _ = lax.while_loop(lambda s: s[3] < n, step, init)
    return jnp.tril(W), piv, info


def _symmetric(W, new, after):
    """``W`` with its block past ``after`` replaced by the lower triangle of ``new``,
    mirrored (LAPACK updates the lower triangle only)."""
    rows = jnp.arange(W.shape[-1])
    block = (rows[:, None] > after) & (rows[None, :] > after)
    low = jnp.where(rows[:, None] >= rows[None, :], new, new.T)
    return jnp.where(block, low, W)


def _rank1(W, k, rows):
    # sytf2: A(k+1:n, k+1:n) -= x (x / d) ^T with x = A(k+1:n, k), then x /= d
    d11 = 1 / W[k, k]
    x = jnp.where(rows > k, W[:, k], 0)
    W = _symmetric(W, W + x[:, None] * (-d11 * x)[None, :], k)
    col = jnp.where(rows > k, d11 * x, W[:, k])
    return W.at[:, k].set(col)


def _rank2(W, k, rows):
    # sytf2's 2x2 block: the trailing block past k + 1 less A_2 D^-1 A_2^T, then L's columns
    d21 = W[k + 1, k]
    d11, d22 = W[k + 1, k + 1] / d21, W[k, k] / d21
    d21 = (1 / (d11 * d22 - 1)) / d21
    a, b = W[:, k], W[:, k + 1]
    wk, wkp1 = d21 * (d11 * a - b), d21 * (d22 * b - a)
    W = _symmetric(W, W - a[:, None] * wk[None, :] - b[:, None] * wkp1[None, :], k + 1)
    later = rows > k + 1
    return W.at[:, k].set(jnp.where(later, wk, a)).at[:, k + 1].set(jnp.where(later, wkp1, b))


@op("aten.linalg_ldl_factor_ex.default", refuses=_real_only)
def ldl_factor_ex(A, *, hermitian=False, check_errors=False):
    if A.shape[-1] == 0:
        return A, jnp.zeros(A.shape[:-1], jnp.int32), jnp.zeros(A.shape[:-2], jnp.int32)
    return _batched(_factor_one, 2, A)


def _solve_one(LD, piv, B):
    """LAPACK's ``sytrs`` (lower): L D L^T X = B, one block of D at a time, then back."""
    n = LD.shape[-1]
    rows = jnp.arange(n)

    def forward(state):
        B, k = state
        two = piv[k] < 0
        kk = jnp.where(two, k + 1, k)
        B = _swap(B, kk, jnp.abs(piv[k]) - 1, 0)
        skip = jnp.where(two, k + 1, k)  # L's columns k (and k + 1) below the block
        B = B - jnp.where((rows > skip)[:, None], LD[:, k][:, None] * B[k][None, :], 0)
        B2 = B - jnp.where((rows > skip)[:, None], LD[:, kk][:, None] * B[kk][None, :], 0)
        B = jnp.where(two, B2, B)
        return jnp.where(two, _block2(LD, B, k), B.at[k].set(B[k] * (1 / LD[k, k]))), k + 1 + two

    def backward(state):
        B, k = state
        two = piv[k] < 0
        dot = lambda c: jnp.where(rows > k, LD[:, c], 0) @ B  # noqa: E731
        B = B.at[k].add(-dot(k))
        B = jnp.where(two, B.at[k - 1].add(-dot(jnp.maximum(k - 1, 0))), B)
        B = _swap(B, k, jnp.abs(piv[k]) - 1, 0)
        return B, k - 1 - two

    B, _ = lax.while_loop(lambda s: s[1] < n, forward, (B, jnp.zeros((), jnp.int32)))
    B, _ = lax.while_loop(lambda s: s[1] >= 0, backward, (B, jnp.asarray(n - 1, jnp.int32)))
    return B


def _block2(LD, B, k):
    """Rows ``k``, ``k + 1`` of ``B`` times the inverse of D's 2x2 block there (``sytrs``)."""
    k1 = jnp.minimum(k + 1, LD.shape[-1] - 1)
    akm1k = LD[k1, k]
    akm1, ak = LD[k, k] / akm1k, LD[k1, k1] / akm1k
    denom = akm1 * ak - 1
    bkm1, bk = B[k] / akm1k, B[k1] / akm1k
    return B.at[k].set((ak * bkm1 - bk) / denom).at[k1].set((akm1 * bk - bkm1) / denom)


@op("aten.linalg_ldl_solve.default", refuses=_real_only)
def ldl_solve(LD, pivots, B, *, hermitian=False):
    if LD.shape[-1] == 0:
        return jnp.zeros(jnp.broadcast_shapes(LD.shape[:-2], B.shape[:-2]) + B.shape[-2:], B.dtype)
    LD, B = broadcast_batch(LD, B, 2, 2)
    pivots = jnp.broadcast_to(pivots, LD.shape[:-1])
    return _batched(_solve_one, 2, LD, pivots, B)

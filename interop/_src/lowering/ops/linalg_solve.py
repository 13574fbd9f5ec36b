"""Linear solves and inverses: ``solve``, ``inv``, LU / Cholesky / triangular solves, ``pinv``.

Batch axes broadcast as torch broadcasts them. Where torch raises on a singular input at
run time (``linalg.inv``, ``linalg.solve``: the graph's ``aten._linalg_check_errors`` node),
a jitted JAX function cannot raise on values: the result is NaN for each such matrix, and
the ``_ex`` variants return torch's ``info`` (LAPACK's: the 1-based index of the first
exactly-zero pivot) beside it.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from interop._src.lowering.ops.linalg_decompositions import (
    broadcast_batch,
    float32_only,
    hermitian_part,
    lu_factor,
    mH,
)
from interop._src.lowering.ops.registry import op


@op("aten._linalg_check_errors.default")
def check_errors(info, api_name, *, is_matrix):
    """torch raises here when ``info`` is not 0; the lowered results carry NaN instead."""
    return None


def _lu_solve(lu, perm, B, mode="N"):
    """``X`` with ``op(A) X = B`` for ``A[perm] = L U`` packed in ``lu``; ``mode`` is
    ``"N"`` (A), ``"T"`` (A^T) or ``"H"`` (A^H). Batch axes broadcast."""
    batch = jnp.broadcast_shapes(lu.shape[:-2], B.shape[:-2])
    lu = jnp.broadcast_to(lu, batch + lu.shape[-2:])
    perm = jnp.broadcast_to(perm, batch + perm.shape[-1:])
    B = jnp.broadcast_to(B, batch + B.shape[-2:]).astype(jnp.result_type(lu, B))
    solve = lax.linalg.triangular_solve
    if mode == "N":
        Y = jnp.take_along_axis(B, perm[..., None], axis=-2)
        Y = solve(lu, Y, left_side=True, lower=True, unit_diagonal=True)
        return solve(lu, Y, left_side=True, lower=False)
    conj = mode == "H"
    Y = solve(lu, B, left_side=True, lower=False, transpose_a=True, conjugate_a=conj)
    Y = solve(
        lu, Y, left_side=True, lower=True, transpose_a=True, conjugate_a=conj, unit_diagonal=True
    )
    return jnp.take_along_axis(Y, jnp.argsort(perm, -1)[..., None], axis=-2)


def _nan_where(bad, x, core):
    """``x`` NaN in each matrix (``core`` = 2) or vector (1) whose flag in ``bad`` is set;
    ``bad``'s axes broadcast against ``x``'s batch axes as torch broadcasts them."""
    bad = jnp.broadcast_to(bad, x.shape[: x.ndim - core])
    return jnp.where(bad.reshape(bad.shape + (1,) * core), jnp.nan, x)


def _is_vector_rhs(A, B):
    """torch's rule: B is a (batch of) vector(s) when 1-d or shaped like ``A.shape[:-1]``."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])


@op("aten._linalg_solve_ex.default", refuses=float32_only)
def solve_ex(A, B, *, left=True, check_errors=False):
    lu, pivots, info, perm = lu_factor(A)
    vector = _is_vector_rhs(A, B)
    B_ = B[..., None] if vector else B
    if left:
        X = _lu_solve(lu, perm, B_)
    else:  # X A = B: A^T X^T = B^T (torch refuses a vector B here)
        X = jnp.swapaxes(_lu_solve(lu, perm, jnp.swapaxes(B_, -1, -2), "T"), -1, -2)
    X = _nan_where(info > 0, X[..., 0], 1) if vector else _nan_where(info > 0, X, 2)
    return X, lu, pivots, info


@op("aten.linalg_inv_ex.default", refuses=float32_only)
def inv_ex(A, *, check_errors=False):
    eye = jnp.broadcast_to(jnp.eye(A.shape[-1], dtype=A.dtype), A.shape)
    X, _, _, info = solve_ex(A, eye)
    return X, info


@op("aten.linalg_lu_solve.default", refuses=float32_only)
def lu_solve(LU, pivots, B, *, left=True, adjoint=False):
    perm = lax.linalg.lu_pivots_to_permutation(pivots.astype(jnp.int32) - 1, LU.shape[-1])
    if left:
        return _lu_solve(LU, perm, B, "H" if adjoint else "N")
    if adjoint:  # X A^H = B: A X^H = B^H
        return mH(_lu_solve(LU, perm, mH(B), "N"))
    return jnp.swapaxes(_lu_solve(LU, perm, jnp.swapaxes(B, -1, -2), "T"), -1, -2)


@op("aten.linalg_solve_triangular.default", refuses=float32_only)
def solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    A, B = broadcast_batch(A, B, 2, 2)
    return lax.linalg.triangular_solve(
        A, B, left_side=left, lower=not upper, unit_diagonal=unitriangular
    )


@op("aten.triangular_solve.default", refuses=float32_only)
def triangular_solve(B, A, upper=True, transpose=False, unitriangular=False):
    A, B = broadcast_batch(A, B, 2, 2)
    X = lax.linalg.triangular_solve(
        A, B, left_side=True, lower=not upper, transpose_a=transpose, unit_diagonal=unitriangular
    )
    return X, A


def _cholesky_solve(B, L, upper):
    """``X`` with ``A X = B`` for ``A = L L^H`` (``A = U^H U`` when ``upper``)."""
    L, B = broadcast_batch(L, B, 2, 2)
    solve = lax.linalg.triangular_solve
    lower = not upper
    # first the factor on the left of A (L, or U^H), then the one on the right (L^H, or U)
    Y = solve(L, B, left_side=True, lower=lower, transpose_a=upper, conjugate_a=upper)
    return solve(L, Y, left_side=True, lower=lower, transpose_a=lower, conjugate_a=lower)


@op("aten.cholesky_solve.default", refuses=float32_only)
def cholesky_solve(B, L, upper=False):
    return _cholesky_solve(B, L, upper)


@op("aten.cholesky_inverse.default", refuses=float32_only)
def cholesky_inverse(L, upper=False):
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    return _cholesky_solve(eye, L, upper)


@op("aten.linalg_pinv.atol_rtol_tensor", refuses=float32_only)
def pinv(A, *, atol=None, rtol=None, hermitian=False):
    m, n = A.shape[-2:]
    if m == 0 or n == 0:
        return jnp.zeros((*A.shape[:-2], n, m), A.dtype)
    real = jnp.finfo(A.dtype).dtype
    if rtol is None:  # torch's default: eps * max(m, n), or 0 when a positive atol is given
        rtol = jnp.asarray(jnp.finfo(real).eps * max(m, n), real)
        rtol = rtol if atol is None else jnp.where(atol > 0, 0, rtol)
    atol = jnp.zeros((), real) if atol is None else atol
    return _pinv(A, atol, rtol, hermitian)


@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _pinv(A, atol, rtol, hermitian):
    """torch's ``linalg_pinv``: ``V diag(1/S) U^H`` over the singular values above
    ``max(atol, rtol * max(S))`` (for ``hermitian``, eigenvalues by their modulus)."""
    if hermitian:
        w, U = jnp.linalg.eigh(hermitian_part(A), symmetrize_input=False)
        S, V, Uh = jnp.abs(w), U, mH(U)
        inv = 1 / w
    else:
        U, S, Vh = jnp.linalg.svd(A, full_matrices=False)
        V, Uh, inv = mH(Vh), mH(U), 1 / S
    tol = jnp.maximum(atol[..., None], rtol[..., None] * S.max(-1, keepdims=True))
    inv = jnp.where(S > tol, inv, 0).astype(A.dtype)
    return (V * inv[..., None, :]) @ Uh


@_pinv.defjvp
def _pinv_jvp(hermitian, primals, tangents):
    # the derivative of the pseudo-inverse of a general matrix (Golub & Pereyra), which
    # torch's pinv_backward transposes: for hermitian=True too, so gradients are torch's
    A, atol, rtol = primals
    dA = tangents[0]
    p = _pinv(A, atol, rtol, hermitian)
    ph, dAh = mH(p), mH(dA)
    eye_m, eye_n = jnp.eye(A.shape[-2], dtype=A.dtype), jnp.eye(A.shape[-1], dtype=A.dtype)
    dp = -p @ dA @ p + (p @ ph) @ dAh @ (eye_m - A @ p) + (eye_n - p @ A) @ dAh @ (ph @ p)
    return p, dp

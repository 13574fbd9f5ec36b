"""Matrix decompositions: SVD, QR, eigen-decompositions, Cholesky, LU, determinants.

Each returns what the ATen op returns, in torch's conventions: LU ``pivots`` 1-based int32
as LAPACK's ``getrf`` writes them, an ``info`` int32 per matrix (0, or the 1-based index of
the first zero pivot / the first leading minor that is not positive-definite), an output
torch leaves empty (``compute_uv=False``) as an empty array. Batches of matrices (any
leading axes, empty ones included) are lowered as torch takes them.

Torch has no bfloat16 / float16 kernel for these ops (it raises at run time although
``torch.export`` records the op), so low-precision inputs are refused (`float32_only`);
``matrix_exp``, which torch supports in low precision, is computed in float32.

Singular vectors and eigenvectors are defined only up to sign (phase, for complex): the
lowering may pick a different sign than torch's LAPACK on another device; ``U diag(S) Vh``
and ``V diag(w) V^H`` are the same.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
from jax import lax

from interop._src.lowering.ops._helpers import up
from interop._src.lowering.ops.registry import op

_LOW = (torch.bfloat16, torch.float16)


def float32_only(node: torch.fx.Node) -> str | None:
    """A refusal for a low-precision input to an op torch computes only in float32/64/complex."""
    vals = [a.meta.get("val") for a in node.args if isinstance(a, torch.fx.Node)]
    low = [v.dtype for v in vals if isinstance(v, torch.Tensor) and v.dtype in _LOW]
    if not low:
        return None
    name = str(low[0]).removeprefix("torch.")
    return (
        f"torch has no {name} kernel for it (float32, float64 and complex only); cast the "
        "input to float32 before the op"
    )


def mH(x: jax.Array) -> jax.Array:
    """The conjugate transpose of the last two axes (the transpose for real ``x``)."""
    x = jnp.swapaxes(x, -1, -2)
    return jnp.conj(x) if jnp.iscomplexobj(x) else x


def hermitian_part(A: jax.Array, lower: bool = True) -> jax.Array:
    """The Hermitian matrix LAPACK reads from one triangle of ``A`` (``syevd``, ``potrf``),
    differentiated as torch differentiates these ops: as functions of ``(A + A^H) / 2``, so
    that gradients are Hermitian (in both triangles) as autograd's are."""
    tri = jnp.tril(A) if lower else jnp.triu(A)
    read = tri + mH(jnp.tril(A, -1) if lower else jnp.triu(A, 1))
    if jnp.iscomplexobj(A):  # LAPACK ignores the imaginary part of the diagonal
        read = jnp.where(jnp.eye(A.shape[-1], dtype=bool), jnp.real(read), read)
    sym = (A + mH(A)) / 2
    return sym + lax.stop_gradient(read - sym)


def _empty(x: jax.Array) -> jax.Array:
    """The empty tensor torch returns for an output it was asked not to compute."""
    return jnp.zeros((0,), x.dtype)


# --- SVD, QR, Householder ---------------------------------------------------------------


@op("aten._linalg_svd.default", refuses=float32_only)
def svd(A, full_matrices=False, compute_uv=True, *, driver=None):
    # driver picks a CUDA solver in torch; every driver computes the same decomposition
    if not compute_uv:
        return _empty(A), jnp.linalg.svd(A, compute_uv=False), _empty(A)
    return tuple(jnp.linalg.svd(A, full_matrices=full_matrices))


@op("aten.linalg_qr.default", refuses=float32_only)
def qr(A, mode="reduced"):
    if mode == "r":
        return _empty(A), jnp.linalg.qr(A, mode="r")
    return tuple(jnp.linalg.qr(A, mode=mode))


@op("aten.linalg_householder_product.default", refuses=float32_only)
def householder_product(A, tau):
    A, tau = broadcast_batch(A, tau, 2, 1)
    return lax.linalg.householder_product(A, tau)


@op("aten.geqrf.default", refuses=float32_only)
def geqrf(A):
    """LAPACK's ``geqrf``: R on and above the diagonal, the Householder vectors below, and
    their scales ``tau``, with ``larfg``'s conventions (``beta = -sign(Re alpha) ||x||``,
    ``tau = 0`` for a column already zero below the diagonal): one reflector per column."""
    m, n = A.shape[-2:]
    k = min(m, n)
    tau = jnp.zeros((*A.shape[:-2], k), A.dtype)
    if k == 0:  # core sizes only: the batch may be symbolic
        return A, tau
    rows, cols = jnp.arange(m), jnp.arange(n)

    def step(i, carry):
        a, tau = carry
        col = a[..., :, i]
        alpha = col[..., i]
        x = jnp.where(rows > i, col, 0)
        xnorm = jnp.linalg.norm(x, axis=-1)
        beta = -jnp.copysign(jnp.hypot(jnp.abs(alpha), xnorm), jnp.real(alpha))
        keep = (xnorm == 0) & (jnp.imag(alpha) == 0)
        t = jnp.where(keep, 0, (beta - alpha) / jnp.where(keep, 1, beta))
        v = x / jnp.where(keep, 1, alpha - beta)[..., None]
        v = jnp.where(rows == i, 1, v)
        # H^H = I - conj(tau) v v^H applied from the left to the columns after i
        w = jnp.einsum("...m,...mn->...n", jnp.conj(v), a)
        update = jnp.conj(t)[..., None, None] * v[..., :, None] * w[..., None, :]
        a = a - jnp.where(cols > i, update, 0)
        top = jnp.where(keep, alpha, beta).astype(a.dtype)
        a = a.at[..., :, i].set(jnp.where(rows == i, top[..., None], jnp.where(rows > i, v, col)))
        return a, tau.at[..., i].set(t)

    return lax.fori_loop(0, k, step, (A, tau))


@op("aten.ormqr.default", refuses=float32_only)
def ormqr(A, tau, C, left=True, transpose=False):
    # Q: the product of the reflectors stored below A's diagonal, of the size of C's side
    batch = jnp.broadcast_shapes(A.shape[:-2], tau.shape[:-1], C.shape[:-2])
    A = jnp.broadcast_to(A, batch + A.shape[-2:])
    tau = jnp.broadcast_to(tau, batch + tau.shape[-1:])
    C = jnp.broadcast_to(C, batch + C.shape[-2:])
    return lax.linalg.ormqr(A, tau, C, left=left, transpose=transpose)


def broadcast_batch(a, b, core_a, core_b):
    """``a`` and ``b`` with their batch axes (all but the last ``core_*``) broadcast."""
    batch = jnp.broadcast_shapes(a.shape[: a.ndim - core_a], b.shape[: b.ndim - core_b])
    a = jnp.broadcast_to(a, batch + a.shape[a.ndim - core_a :])
    return a, jnp.broadcast_to(b, batch + b.shape[b.ndim - core_b :])


# --- eigen-decompositions ----------------------------------------------------------------


@op("aten._linalg_eigh.default", refuses=float32_only)
def eigh(A, UPLO="L", compute_v=True):
    # the UPLO triangle is read, as LAPACK's syevd reads it
    v, w = lax.linalg.eigh(hermitian_part(A, UPLO == "L"), symmetrize_input=False)
    return w, (v if compute_v else _empty(A))


@op("aten.linalg_eig.default", refuses=float32_only)
def eig(A):
    w, v = jnp.linalg.eig(A)
    return w, v


@op("aten.linalg_matrix_sqrth.default", refuses=float32_only)
def matrix_sqrth(A):
    v, w = lax.linalg.eigh(hermitian_part(A), symmetrize_input=False)
    return (v * jnp.sqrt(w)[..., None, :].astype(v.dtype)) @ mH(v)


@op("aten.linalg_polar.default", refuses=float32_only)
def polar(A):
    # A = U H with U = W Vh (unitary) and H = Vh^H diag(S) Vh (positive semi-definite)
    W, S, Vh = jnp.linalg.svd(A, full_matrices=False)
    H = (mH(Vh) * S[..., None, :].astype(Vh.dtype)) @ Vh
    return W @ Vh, H


# --- Cholesky ----------------------------------------------------------------------------


@op("aten.linalg_cholesky_ex.default", refuses=float32_only)
def cholesky_ex(A, *, upper=False, check_errors=False):
    # upper: the upper triangle of A is read, A = U^H U, and U = L^H
    H = hermitian_part(A, not upper)
    L = lax.linalg.cholesky(H, symmetrize_input=False)
    if A.shape[-1] == 0:
        return L, _zeros_info(A)
    info = lax.cond(jnp.isnan(L).any(), _not_pd_index, _zeros_info, H)
    return (mH(L) if upper else L), info


def _zeros_info(a):
    return jnp.zeros(a.shape[:-2], jnp.int32)


def _not_pd_index(a):
    """LAPACK ``potrf``'s info: the order of the first leading minor of the Hermitian ``a``
    that is not positive-definite, 0 where all are.

    The pivots of Gaussian elimination without pivoting are ``det(A_k) / det(A_{k-1})``,
    which are all positive exactly when every leading minor is; only computed when the
    factorisation failed.
    """
    n = a.shape[-1]
    later = jnp.arange(n)

    def step(k, carry):
        m, info = carry
        d = jnp.real(m[..., k, k])
        info = jnp.where((info == 0) & ~(d > 0), k + 1, info)
        col = m[..., :, k] / jnp.where(d > 0, d, 1).astype(m.dtype)[..., None]
        keep = (later > k)[:, None] & (later > k)[None, :]
        m = m - jnp.where(keep, col[..., :, None] * m[..., k, None, :], 0)
        return m, info

    return lax.fori_loop(0, n, step, (a, _zeros_info(a)))[1]


# --- LU and determinants -----------------------------------------------------------------


def lu_factor(A):
    """``(LU, pivots, info)`` as LAPACK's ``getrf``: 1-based int32 pivots, info the 1-based
    index of the first exactly-zero pivot (0 when none), and the permutation."""
    lu, piv, perm = lax.linalg.lu(A)
    diag = jnp.diagonal(lu, axis1=-2, axis2=-1)
    zero = diag == 0
    if diag.shape[-1] == 0:
        info = jnp.zeros(diag.shape[:-1], jnp.int32)
    else:
        info = jnp.where(zero.any(-1), jnp.argmax(zero, -1) + 1, 0).astype(jnp.int32)
    return lu, (piv + 1).astype(jnp.int32), info, perm


def _no_pivot(node: torch.fx.Node) -> str | None:
    if node.kwargs.get("pivot", True) is False:
        return "pivot=False: LU without pivoting, which torch runs only on CUDA and JAX lacks"
    return float32_only(node)


@op("aten.linalg_lu_factor_ex.default", refuses=_no_pivot)
def lu_factor_ex(A, *, pivot=True, check_errors=False):
    lu, pivots, info, _ = lu_factor(A)
    return lu, pivots, info


@op("aten.linalg_lu.default", refuses=_no_pivot)
def lu(A, *, pivot=True):
    lu_, _, _, perm = lu_factor(A)
    m, n = A.shape[-2:]
    k = min(m, n)
    L = jnp.tril(lu_[..., :, :k], -1) + jnp.eye(m, k, dtype=A.dtype)
    U = jnp.triu(lu_[..., :k, :])
    return _permutation_matrix(perm, A.dtype), L, U


def _permutation_matrix(perm, dtype):
    """P with ``A = P L U`` from ``perm`` with ``A[perm] = L U``: ``P[perm[i], i] = 1``."""
    return jnp.swapaxes(jax.nn.one_hot(perm, perm.shape[-1], dtype=dtype), -1, -2)


@op("aten.lu_unpack.default", refuses=float32_only)
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    P = L = U = _empty(LU_data)
    if unpack_pivots:
        perm = lax.linalg.lu_pivots_to_permutation(LU_pivots.astype(jnp.int32) - 1, m)
        P = _permutation_matrix(perm, LU_data.dtype)
    if unpack_data:
        L = jnp.tril(LU_data[..., :, :k], -1) + jnp.eye(m, k, dtype=LU_data.dtype)
        U = jnp.triu(LU_data[..., :k, :])
    return P, L, U


def _det_parts(A):
    """LU of ``A^T`` for real ``A`` (torch factors the transpose: det(A^T) = det(A)), its
    pivots, its diagonal and the permutation's sign."""
    lu_, pivots, _, _ = lu_factor(A if jnp.iscomplexobj(A) else jnp.swapaxes(A, -1, -2))
    diag = jnp.diagonal(lu_, axis1=-2, axis2=-1)
    swaps = (pivots != jnp.arange(1, pivots.shape[-1] + 1, dtype=jnp.int32)).sum(-1)
    return lu_, pivots, diag, jnp.where(swaps % 2 == 1, -1, 1).astype(A.dtype)


@op("aten._linalg_det.default", refuses=float32_only)
def det(A):
    lu_, pivots, diag, sign = _det_parts(A)
    return sign * jnp.prod(diag, -1), lu_, pivots


@op("aten._linalg_slogdet.default", refuses=float32_only)
def slogdet(A):
    lu_, pivots, diag, sign = _det_parts(A)
    mag = jnp.abs(diag)
    unit = jnp.where(mag == 0, 0, diag / jnp.where(mag == 0, 1, mag).astype(diag.dtype))
    return sign * jnp.prod(unit, -1), jnp.sum(jnp.log(mag), -1), lu_, pivots


@op("aten.linalg_matrix_exp.default")
def matrix_exp(A):
    return jax.scipy.linalg.expm(up(A)).astype(A.dtype)

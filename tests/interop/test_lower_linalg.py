"""Linear algebra through ``interop.lower``: what torch's OpInfo samples cover thinly.

Modules calling ``torch.linalg`` are lowered and compared with torch eager: the run-time error
checks of ``inv`` / ``solve`` / ``cholesky`` (effect tokens in the exported graph), singular and
non-positive-definite inputs (NaN where torch raises, torch's ``info`` from the ``_ex``
variants), broadcast batches, complex inputs, outputs defined only up to sign, refusals of
what torch cannot compute, gradients against autograd, and a symbolic batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from interop._src.lowering.ops import TABLE

_g = torch.Generator().manual_seed(0)


def r(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=_g, dtype=dtype)


def spd(*shape):
    a = r(*shape)
    return a @ a.mT + shape[-1] * torch.eye(shape[-1])


class Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def lowered(fn, *xs):
    """The lowered function's outputs under ``jax.jit``, as a list of arrays."""
    forward, params = interop.lower(Fn(fn), xs, dynamic_batch=False)
    got = jax.jit(forward)(params, tuple(interop.to_jax(x, copy=True) for x in xs))
    return [np.asarray(g) for g in (got if isinstance(got, tuple) else [got])]


def run(fn, *xs):
    """torch's outputs and the lowered function's, as lists of arrays."""
    with torch.no_grad():
        want = fn(*xs)
    return [w.numpy() for w in (want if isinstance(want, tuple) else [want])], lowered(fn, *xs)


def close(got, want, atol=1e-4):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol)


@pytest.mark.parametrize(
    "fn",
    [
        torch.linalg.inv,
        lambda a: torch.linalg.solve(a, a[..., 0]),
        lambda a: torch.linalg.cholesky(a @ a.mT + 3 * torch.eye(3)),
        lambda a: torch.linalg.lu_factor(a),
        lambda a: torch.linalg.matrix_power(a, -2),
        lambda a: torch.linalg.tensorinv(a[0].reshape(3, 3, 1), ind=1),
    ],
    ids=["inv", "solve", "cholesky", "lu_factor", "matrix_power-2", "tensorinv"],
)
def test_ops_with_a_runtime_error_check_lower(fn) -> None:
    """torch.export threads an effect token through ``aten._linalg_check_errors``; it was
    read as state the forward mutates, and the module refused."""
    want, got = run(fn, r(2, 3, 3))
    for g, w in zip(got, want, strict=True):
        close(g, w)


def test_singular_matrices_give_nan_where_torch_raises_and_torch_info_from_ex() -> None:
    a = r(3, 4, 4)
    a[1, :, 2] = 0  # batch entry 1 is exactly singular
    with pytest.raises(RuntimeError, match="singular"):
        torch.linalg.inv(a)
    (inv,) = lowered(torch.linalg.inv, a)
    assert np.isnan(inv[1]).all() and np.isfinite(inv[[0, 2]]).all()
    close(inv[[0, 2]], torch.linalg.inv(a[[0, 2]]).numpy())
    for fn in (torch.linalg.inv_ex, lambda a: torch.linalg.solve_ex(a, a[..., :2])):
        want, got = run(fn, a)
        assert got[1].dtype == np.int32 and (got[1] == want[1]).all() and got[1][1] > 0
        close(got[0][[0, 2]], want[0][[0, 2]])
        assert np.isnan(got[0][1]).all()
    want, got = run(lambda a: torch.linalg.lu_factor_ex(a), a)
    for g, w in zip(got, want, strict=True):
        close(g, w)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_ex_info_is_the_first_minor_not_positive_definite(upper: bool) -> None:
    a = spd(4, 5, 5)
    a[1, 2, 2] = -30.0  # order 3 fails
    a[2, 0, 0] = 0.0  # order 1 fails
    a[3, 4, 4] = float("nan")
    want, got = run(lambda a: torch.linalg.cholesky_ex(a, upper=upper), a)
    assert got[1].tolist() == want[1].tolist() == [0, 3, 1, 5]
    close(got[0][0], want[0][0])
    with pytest.raises(RuntimeError, match="not positive-definite"):
        torch.linalg.cholesky(a[:2])
    (chol,) = lowered(torch.linalg.cholesky, a[:2])
    assert np.isnan(chol[1][np.tril_indices(5)]).all() and np.isfinite(chol[0]).all()


def test_ldl_pivots_blocks_and_info_as_lapack() -> None:
    """Bunch-Kaufman as LAPACK's sytf2 / sytrs: 1x1 and 2x2 blocks, row swaps, a zero
    column's info, only the lower triangle read; sizes past LAPACK's block size (64) too."""
    for n in (5, 70):
        a = r(3, n, n)
        a[1].diagonal().zero_()  # 2x2 blocks
        a[2, :, 1] = a[2, 1, :] = 0  # an exactly zero column: info > 0
        a = torch.tril(a) + 0.1 * torch.triu(r(n, n), 1)  # the upper triangle is ignored
        want, got = run(torch.linalg.ldl_factor_ex, a)
        assert (got[1] == want[1]).all() and (got[1] < 0).any()
        info = want[2].tolist()
        assert got[2].tolist() == info and info[:2] == [0, 0] and info[2] > 0
        close(got[0], want[0], atol=1e-3)
    a = r(2, 5, 5)
    a[1].diagonal().zero_()
    b = r(5, 2)  # broadcast to LD's batch (torch 2.14 segfaults on a B with more batch axes)

    def solve(a, b):
        return torch.linalg.ldl_solve(*torch.linalg.ldl_factor(a + a.mT), b)

    want, got = run(solve, a, b)
    assert got[0].shape == (2, 5, 2)
    close(got[0], want[0], atol=1e-3)


def test_solve_broadcasts_batches_and_vectors_as_torch() -> None:
    a, b = r(2, 1, 4, 4), r(3, 4, 2)
    for fn in (
        torch.linalg.solve,
        lambda a, b: torch.linalg.solve(a, b.mT[..., :4], left=False),
        lambda a, b: torch.linalg.solve(a[0, 0], b[0, :, 0]),  # one vector
        lambda a, b: torch.linalg.solve(a[:, 0], b[:2, :, 0]),  # a batch of vectors
        lambda a, b: torch.linalg.solve_triangular(a.triu() + 4 * torch.eye(4), b, upper=True),
        lambda a, b: torch.cholesky_solve(b, torch.linalg.cholesky(a @ a.mT + torch.eye(4))),
    ):
        (want,), (got,) = run(fn, a, b)
        assert got.shape == want.shape
        close(got, want)


def _recompose(u, s, vh):
    return (u[..., :, : s.shape[-1]] * s[..., None, :]) @ vh[..., : s.shape[-1], :]


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_decompositions_equal_torch_where_defined(dtype) -> None:
    """Singular values and eigenvalues exactly; vectors up to sign (phase): their moduli and
    the products they recompose, batched and wide / tall."""
    a = r(2, 5, 3, dtype=dtype)
    for full in (False, True):
        want, got = run(lambda a, full=full: torch.linalg.svd(a, full_matrices=full), a)
        close(got[1], want[1])
        close(_recompose(*got), a.numpy())
        k = want[1].shape[-1]
        close(np.abs(got[0][..., :k]), np.abs(want[0][..., :k]))
        close(np.abs(got[2][..., :k, :]), np.abs(want[2][..., :k, :]))
    h = spd(2, 4, 4).to(dtype)
    want, got = run(lambda h: torch.linalg.eigh(h, UPLO="U"), h)
    close(got[0], want[0])
    close(np.abs(got[1]), np.abs(want[1]))
    for fn in (torch.linalg.qr, torch.linalg.det, torch.linalg.slogdet, torch.linalg.pinv):
        want, got = run(fn, a if fn in (torch.linalg.qr, torch.linalg.pinv) else h)
        for g, w in zip(got, want, strict=True):
            close(g, w)


def test_eig_of_a_real_matrix_is_complex_as_torch() -> None:
    """Eigenvalues as torch's (their order is unspecified), unit eigenvectors of them."""
    a = r(2, 6, 6)
    want, got = run(torch.linalg.eig, a)
    assert got[0].dtype == got[1].dtype == np.complex64
    close(np.sort_complex(got[0]), np.sort_complex(want[0]))
    close(a.numpy().astype(np.complex64) @ got[1], got[1] * got[0][..., None, :])
    close(np.linalg.norm(got[1], axis=-2), np.ones((2, 6)))


def test_low_precision_is_refused_where_torch_has_no_kernel() -> None:
    with pytest.raises(interop.LoweringError, match=r"no bfloat16 kernel.*cast the input"):
        interop.lower(Fn(torch.linalg.svd), (r(3, 3).bfloat16(),), dynamic_batch=False)
    with pytest.raises(RuntimeError):
        torch.linalg.svd(r(3, 3).bfloat16())  # what torch itself does with it
    with pytest.raises(interop.LoweringError, match="pivot=False"):
        interop.lower(Fn(lambda a: torch.linalg.lu(a, pivot=False)), (r(3, 3),))


def test_matrix_exp_in_low_precision_computes_in_float32() -> None:
    a = 0.5 * r(2, 4, 4)
    (_,), (got,) = run(torch.linalg.matrix_exp, a.half())
    assert got.dtype == np.float16
    close(got.astype(np.float32), torch.linalg.matrix_exp(a.half().float()).half().numpy(), 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_add_matmuls_round_as_torch_in_low_precision(dtype) -> None:
    """As torch's CPU kernels round: ``beta * bias + alpha * prod`` summed in float32 and
    rounded once (once per batch entry for addbmm; gemv's own order for addmv): within one
    unit in the last place (the summation order is the kernel's), and bit for bit where the
    inner axis is empty (``bias`` times ``beta`` rounded to the dtype)."""
    bias = 8 * r(5, 6, dtype=dtype)
    for k in (7, 0):
        a, b = r(3, 5, k, dtype=dtype), r(3, k, 6, dtype=dtype)
        for name, args in (
            ("addmm", (bias, a[0], b[0])),
            ("baddbmm", (bias, a, b)),
            ("addbmm", (bias, a, b)),
            ("addmv", (bias[:, 0], a[0], b[0, :, 0])),
        ):
            want = getattr(torch, name)(*args, beta=0.2, alpha=0.6)
            got = TABLE[f"aten.{name}.default"](*map(interop.to_jax, args), beta=0.2, alpha=0.6)
            got, want = np.asarray(got.astype(jnp.float32)), want.float().numpy()
            ulp = np.abs(want) * float(torch.finfo(dtype).eps) if k else 0
            assert (np.abs(got - want) <= ulp).all(), name


@pytest.mark.parametrize(
    ("fn", "make"),
    [
        (torch.linalg.det, lambda: r(2, 4, 4)),
        (lambda a: torch.linalg.slogdet(a)[1], lambda: r(2, 4, 4)),
        (torch.linalg.inv, lambda: r(2, 4, 4)),
        (lambda a: torch.linalg.solve(a, a[..., :2].exp()), lambda: r(2, 4, 4)),
        (torch.linalg.cholesky, lambda: spd(2, 4, 4)),
        (torch.linalg.svdvals, lambda: r(2, 5, 3)),
        (torch.linalg.eigvalsh, lambda: spd(2, 4, 4)),
        (torch.linalg.matrix_exp, lambda: 0.3 * r(2, 4, 4)),
        (torch.linalg.pinv, lambda: r(2, 5, 3)),
        (lambda a: torch.linalg.qr(a)[1], lambda: r(2, 5, 3)),
        (lambda a: torch.linalg.pinv(a, hermitian=True), lambda: spd(2, 4, 4)),
    ],
    ids=[
        "det",
        "slogdet",
        "inv",
        "solve",
        "cholesky",
        "svdvals",
        "eigvalsh",
        "matrix_exp",
        "pinv",
        "qr",
        "pinv-hermitian",
    ],
)
def test_gradients_equal_torch_autograd(fn, make) -> None:
    a = make()
    w = r(*fn(a).shape)
    t = a.clone().requires_grad_()
    (fn(t) * w).sum().backward()
    forward, params = interop.lower(Fn(fn), (a,), dynamic_batch=False)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(forward(params, (x,)) * interop.to_jax(w))))
    close(np.asarray(grad(interop.to_jax(a))), t.grad.numpy(), atol=1e-3)


def test_a_symbolic_batch_exports_once_for_every_batch_size() -> None:
    """``jax.export`` on a symbolic batch, serialised and called back at two batch sizes."""

    def fn(a):
        h = a @ a.mT + 4 * torch.eye(4)
        return (
            torch.linalg.det(a),
            torch.linalg.slogdet(a)[1],
            torch.linalg.inv(a),
            torch.linalg.solve(a, a[..., :1]),
            torch.linalg.cholesky(h),
            torch.linalg.svdvals(a),
            torch.linalg.eigvalsh(h),
            torch.linalg.qr(a)[1],
            torch.linalg.pinv(a),
            torch.linalg.matrix_exp(a),
            torch.linalg.lu(a)[2],
            torch.linalg.ldl_factor(h)[0],
        )

    forward, params = interop.lower(Fn(fn), r(3, 4, 4))
    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, 4, 4), jnp.float32)
    exported = jax.export.export(jax.jit(forward))(params, spec)
    restored = jax.export.deserialize(exported.serialize())
    for batch in (1, 5):
        a = r(batch, 4, 4)
        for g, w in zip(restored.call(params, interop.to_jax(a)), fn(a), strict=True):
            close(np.asarray(g), w.numpy(), atol=1e-3)

"""Sorting and selection through ``interop.lower`` against torch: NaNs and signed zeros where
torch puts them, ties in the stable order (and, where torch leaves their order open, values
equal to torch's with indices that address them), 0-d inputs, gradients, a symbolic batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from tests.interop.ops.lowering_fn import Fn, lowered

nan, inf = float("nan"), float("inf")


def _exact(got, want) -> None:
    """Every output equal to torch's, NaNs where torch's are, indices included."""
    got = got if isinstance(got, (tuple, list)) else (got,)
    want = want if isinstance(want, (tuple, list)) else (want,)
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g)
        assert g.shape == tuple(w.shape)
        np.testing.assert_array_equal(g.astype(np.float64), w.double().numpy())


# rows of at most 16 elements: torch's CPU sort orders their ties stably (an insertion sort)
special = torch.tensor([
    [1.0, nan, -0.0, 0.0, nan, 2.0, 1.0, -inf],
    [3.0, 3.0, inf, -1.0, 0.0, -0.0, 5.0, 3.0],
    [nan, nan, nan, nan, nan, nan, nan, nan],
])  # fmt: skip
# no two values equal (selection among equal values is left open by torch: tested below)
distinct = torch.tensor([
    [1.0, nan, -0.5, 0.0, 2.0, -inf, 7.0, 3.0],
    [3.0, 2.5, inf, -1.0, 0.0, -2.0, 5.0, 4.0],
])  # fmt: skip


@pytest.mark.parametrize(
    ("fn", "x"),
    [
        (lambda x: torch.sort(x, dim=1), special),
        (lambda x: torch.sort(x, dim=1, descending=True), special),
        (lambda x: torch.sort(x, dim=0, stable=True, descending=True), special),
        (lambda x: torch.argsort(x, dim=1, stable=True), special),
        (lambda x: torch.median(x[1]), special),
        (lambda x: torch.nanmedian(x[:2]), special),
        (lambda x: torch.mode(x[1:2], dim=1), special),
        (lambda x: torch.topk(x, 3, dim=1), distinct),
        (lambda x: torch.topk(x, 3, dim=1, largest=False), distinct),
        (lambda x: torch.kthvalue(x, 4, dim=1), distinct),
        (lambda x: torch.median(x, dim=1), distinct),
        (lambda x: torch.nanmedian(x, dim=1, keepdim=True), distinct),
    ],
    ids=[
        "sort", "sort-descending", "sort-stable-dim0", "argsort", "median", "nanmedian", "mode",
        "topk", "topk-smallest", "kthvalue", "median-dim", "nanmedian-keepdim",
    ],
)  # fmt: skip
def test_nans_signed_zeros_and_ties_land_where_torch_puts_them(fn, x) -> None:
    got, want = lowered(fn, x)
    _exact(got, want)


def test_an_all_nan_row_gives_nan() -> None:
    got, want = lowered(lambda x: (torch.nanmedian(x, 1).values, *torch.median(x, 1)), special)
    _exact(got, want)


@pytest.mark.parametrize("descending", [False, True])
def test_ties_come_in_input_order_with_values_and_indices_consistent(descending) -> None:
    # runs of equal values (as OpInfo's 8000-element bfloat16 sample has): torch's unstable
    # sort may order them any way; the lowering gives the stable order, a valid one
    x = torch.arange(2000.0).to(torch.bfloat16)[torch.randperm(2000)]
    got, want = lowered(lambda a: torch.sort(a, descending=descending), x)
    np.testing.assert_array_equal(np.asarray(got[0]).astype(np.float32), want.values.float())
    stable = torch.sort(x, stable=True, descending=descending).indices
    np.testing.assert_array_equal(np.asarray(got[1]), stable.numpy())
    assert (x[torch.from_numpy(np.asarray(got[1]).astype(np.int64))] == want.values).all()


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: torch.topk(x, 2, dim=1),
        lambda x: torch.kthvalue(x, 3, dim=1),
        lambda x: torch.mode(x, dim=1),
        lambda x: torch.median(x, dim=1),
    ],
    ids=["topk", "kthvalue", "mode", "median"],
)
def test_selection_among_many_repeats_addresses_equal_values(fn) -> None:
    x = torch.randint(0, 4, (6, 300)).float()  # long rows: torch's choice among ties is open
    got, want = lowered(fn, x)
    values, idx = np.asarray(got[0]), np.asarray(got[1]).astype(np.int64)
    np.testing.assert_array_equal(values, want[0].numpy())
    picked = np.take_along_axis(x.numpy(), idx.reshape(idx.shape[0], -1), axis=1)
    np.testing.assert_array_equal(picked.reshape(values.shape), values)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: torch.sort(x),
        lambda x: torch.topk(x, 1),
        lambda x: torch.kthvalue(x, 1, 0),
        lambda x: torch.median(x, 0),
        lambda x: torch.mode(x),
    ],
    ids=["sort", "topk", "kthvalue", "median", "mode"],
)
def test_a_0d_input(fn) -> None:
    got, want = lowered(fn, torch.tensor(2.5))
    _exact(got, want)


sorted_rows = torch.tensor([[-1.0, 0.0, 0.0, 2.0, inf, nan], [1.0, 1.0, 1.0, 3.0, 4.0, 9.0]])
values = torch.tensor([[0.0, nan, 2.0, -inf], [1.0, 5.0, 0.5, 9.0]])


@pytest.mark.parametrize(
    "fn",
    [
        lambda s, v: torch.searchsorted(s, v),
        lambda s, v: torch.searchsorted(s, v, right=True, out_int32=True),
        lambda s, v: torch.searchsorted(s[1], v, side="right"),
        lambda s, v: torch.searchsorted(s[1], 1.0),
        lambda s, v: torch.searchsorted(s.flip(1), v, sorter=torch.arange(5, -1, -1).repeat(2, 1)),
        lambda s, v: torch.bucketize(v, s[1]),
        lambda s, v: torch.bucketize(v, s[1], right=True),
    ],
    ids=["left", "right-int32", "1d-seq", "scalar", "sorter", "bucketize", "bucketize-right"],
)
def test_binary_searches_match_torch_step_for_step(fn) -> None:
    got, want = lowered(fn, sorted_rows, values)
    _exact(got, want)
    assert np.asarray(got).dtype == np.int32  # int64 narrowed without x64, or out_int32


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: torch.sort(x, dim=1).values * torch.linspace(-1, 1, 7),
        lambda x: torch.topk(x, 3, dim=1).values ** 2,
        lambda x: torch.median(x, dim=1).values * 3,
        lambda x: torch.kthvalue(x, 2, dim=1).values.exp(),
    ],
    ids=["sort", "topk", "median", "kthvalue"],
)
def test_gradients_match_torch_autograd(fn) -> None:
    x = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    forward, params = interop.lower(Fn(fn), (x,), dynamic_batch=False)
    grad = jax.jit(jax.grad(lambda a: forward(params, (a,)).sum()))(jnp.asarray(x.numpy()))
    t = x.clone().requires_grad_()
    fn(t).sum().backward()
    np.testing.assert_allclose(grad, t.grad.numpy(), atol=1e-5)


def test_a_symbolic_batch() -> None:
    def fn(x):
        return torch.sort(x, dim=1).values, torch.topk(x, 2, dim=-1).indices, x.median(dim=1)

    module = Fn(fn)
    forward, params = interop.lower(module, torch.randn(3, 6), dynamic_batch=True)
    for batch in (2, 9):
        x = torch.randn(batch, 6)
        got = jax.jit(forward)(params, interop.to_jax(x))
        with torch.no_grad():
            want = module(x)
        _exact(jax.tree.leaves(got), [want[0], want[1], *want[2]])


def test_a_binary_search_over_a_symbolic_length() -> None:
    # boundaries given as an input: their length is the batch axis, unknown at lowering
    def fn(x, b):
        return torch.bucketize(x, b), torch.searchsorted(b, x[:, 0].contiguous(), right=True)

    module = Fn(fn)
    x, b = torch.randn(4, 3), torch.sort(torch.randn(4)).values
    forward, params = interop.lower(module, (x, b), dynamic_batch=True)
    for n in (3, 40):
        x, b = torch.randn(n, 3), torch.sort(torch.randn(n)).values
        got = jax.jit(forward)(params, (interop.to_jax(x), interop.to_jax(b)))
        _exact(got, module(x, b))

"""Indexing, scatters and strided views through ``interop.lower``: 0-d inputs, boolean masks
written and read, the scatter reductions, ``as_strided`` refused where its strides would address
memory outside its input, gradients against torch autograd, and a symbolic batch."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import interop
from tests.interop.ops.lowering_fn import Fn, lowered


def _same(got, want, atol=1e-6) -> None:
    if isinstance(want, (tuple, list)):
        for g, w in zip(got, want, strict=True):
            _same(g, w, atol)
        return
    got = np.asarray(got)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.astype(np.float64), want.double().numpy(), atol=atol)


def _refused(fn, *args, match: str) -> str:
    with pytest.raises(interop.LoweringError) as info:
        interop.lower(Fn(fn), args, dynamic_batch=False)
    assert re.search(match, str(info.value)), str(info.value)
    return str(info.value)


g = torch.Generator().manual_seed(0)
x45 = torch.randn(4, 5, generator=g)
mask45 = torch.rand(4, 5, generator=g) > 0.5


# --- 0-d inputs (the crashes: "axis 0 is out of bounds for array of dimension 0") ---
@pytest.mark.parametrize(
    "fn",
    [
        lambda x, i: torch.index_select(x, 0, i),
        lambda x, i: torch.gather(x, 0, i),
        lambda x, i: x.index_add(0, i, x * 2),
        lambda x, i: x.index_copy(0, i, x * 3),
        lambda x, i: x.index_fill(0, i, 5.0),
        lambda x, i: torch.scatter(x, 0, i, x + 1),
        lambda x, i: torch.scatter_add(x, 0, i, x),
        lambda x, i: torch.scatter_reduce(x, 0, i, x * 3, "amax", include_self=False),
        lambda x, i: x.index_reduce(0, i, x * 2, "prod"),
        lambda x, i: x.take(i),
    ],
    ids=[
        "index_select", "gather", "index_add", "index_copy", "index_fill", "scatter",
        "scatter_add", "scatter_reduce", "index_reduce", "take",
    ],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")
def test_index_ops_on_a_0d_tensor(fn) -> None:
    got, want = lowered(fn, torch.tensor(2.5), torch.tensor(0))
    _same(got, want)


def _set_through_trailing_mask(x, m, v):
    y = x.clone()
    y[:, m] = v  # (y[:, m] += v would read through the mask first: refused)
    return y


# --- boolean masks: writing keeps the shape and lowers; reading depends on the data ---
@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (lambda x, m: x.index_put((m,), torch.tensor(7.0)), (x45, mask45)),
        (lambda x, m: x.index_put((m,), torch.tensor(7.0), accumulate=True), (x45, mask45)),
        (
            lambda x, m, v: x.index_put((m,), v),
            (x45, mask45, torch.arange(20.0)[: int(mask45.sum())]),
        ),
        (_set_through_trailing_mask, (x45, mask45[0], torch.randn(4, 1))),
        (lambda x, m, v: x.index_put((m,), v), (x45, mask45[:, 0], torch.randn(5))),
        (lambda x, m: x.masked_fill(m, 0.0).index_put((m,), x.sum() * 0 + 1), (x45, mask45)),
    ],
    ids=["scalar", "accumulate", "one-per-position", "trailing-dims", "rows", "from-graph"],
)
def test_writing_through_a_boolean_mask_lowers(fn, args) -> None:
    got, want = lowered(fn, *args)  # NonConcreteBooleanIndexError before
    _same(got, want)


def test_writing_through_a_mask_has_torchs_gradient() -> None:
    fn = Fn(lambda x, m: x.index_put((m,), x.mean() * 3))
    forward, params = interop.lower(fn, (x45, mask45), dynamic_batch=False)
    grad = jax.grad(lambda a: (forward(params, (a, jnp.asarray(mask45.numpy()))) ** 2).sum())
    t = x45.clone().requires_grad_()
    (fn(t, mask45) ** 2).sum().backward()
    np.testing.assert_allclose(grad(jnp.asarray(x45.numpy())), t.grad.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "fn",
    [lambda x, m: x[m], lambda x, m: torch.masked_select(x, m), lambda x, m: torch.nonzero(m)],
    ids=["getitem", "masked_select", "nonzero"],
)
def test_reading_through_a_mask_is_refused_saying_what_keeps_the_shape(fn) -> None:
    msg = _refused(fn, x45, mask45, match="depends on the data and JAX needs static shapes")
    assert "torch.where" in msg and "torch._check(size == N)" in msg
    assert "<root> (Fn)" in msg


class _Pinned(torch.nn.Module):
    """Reads through a mask whose count of True elements it knows, pinned with torch._check."""

    def __init__(self, fn, count: int) -> None:
        super().__init__()
        self.fn, self.count = fn, count

    def forward(self, x, m):
        out = self.fn(x, m)
        torch._check(out.shape[0] == self.count)
        return out.flip(0)[:3] * 2  # used further, as a graph would


@pytest.mark.parametrize(
    "fn",
    [lambda x, m: x[m], lambda x, m: torch.masked_select(x, m), lambda x, m: torch.nonzero(m)],
    ids=["getitem", "masked_select", "nonzero"],
)
def test_reading_through_a_mask_lowers_where_its_size_is_pinned(fn) -> None:
    module = _Pinned(fn, int(mask45.sum()))
    forward, params = interop.lower(module, (x45, mask45), dynamic_batch=False)
    got = jax.jit(forward)(params, (jnp.asarray(x45.numpy()), jnp.asarray(mask45.numpy())))
    with torch.no_grad():
        want = module(x45, mask45)
    _same(got, want)


def test_nonzero_static_lowers_with_its_fill() -> None:
    got, want = lowered(lambda m: torch.nonzero_static(m, size=30, fill_value=-7), mask45)
    _same(got, want)


def _unique_pinned(count, **kwargs):
    def fn(x):
        out = torch.unique(x, **kwargs)
        first = out[0] if isinstance(out, tuple) else out
        torch._check(first.shape[kwargs.get("dim") or 0] == count)
        return out

    return fn


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"return_inverse": True, "return_counts": True}, {"dim": 1, "return_inverse": True}],
    ids=["values", "inverse-counts", "dim"],
)
def test_unique_lowers_where_its_size_is_pinned(kwargs) -> None:
    x = torch.tensor([[3, 1, 3, 2], [0, 1, 0, 2]])
    count = torch.unique(x, **kwargs)
    count = (count[0] if isinstance(count, tuple) else count).shape[kwargs.get("dim") or 0]
    got, want = lowered(_unique_pinned(count, **kwargs), x)
    _same(got, want)


def test_unique_consecutive_lowers_where_pinned_and_is_refused_elsewhere() -> None:
    x = torch.tensor([1.0, 1.0, float("nan"), float("nan"), 2.0, 2.0, 1.0])

    def pinned(a):
        out, inverse, counts = torch.unique_consecutive(a, return_inverse=True, return_counts=True)
        torch._check(out.shape[0] == 5)  # each NaN is a run of its own, as in torch
        return out, inverse, counts

    got, want = lowered(pinned, x)
    np.testing.assert_array_equal(np.asarray(got[0]), want[0].numpy())  # NaNs where torch's are
    _same(got[1:], want[1:])
    _refused(torch.unique_consecutive, x, match=r"unique_consecutive.*count of runs")


def test_item_as_an_index_lowers_and_as_a_size_is_refused() -> None:
    got, want = lowered(lambda x, i: x.reshape(-1)[i.item()] * 2, x45, torch.tensor(7))
    _same(got, want)
    _refused(
        lambda x, n: torch.zeros(n.item()) + x.sum(), x45, torch.tensor(3),
        match=r"a size taken from a tensor's value \(x\.item\(\)\)",
    )  # fmt: skip


# --- scatters ---
idx = torch.randint(0, 4, (3, 5), generator=g)  # repeats: several sources reach one element


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_scatter_reduce_matches_torch(reduce, include_self, dtype) -> None:
    x = (x45 * 4).to(dtype)
    src = (torch.randn(3, 5, generator=g) * 4).to(dtype)

    def fn(a, i, s):
        return torch.scatter_reduce(a, 0, i, s, reduce, include_self=include_self)

    got, want = lowered(fn, x, idx, src)
    _same(got, want, atol=1e-4)


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
def test_index_reduce_matches_torch_on_integers(reduce) -> None:
    x = (x45 * 4).long()

    def fn(a, i, s):
        return a.index_reduce(1, i, s, reduce, include_self=False)

    got, want = lowered(fn, x, torch.tensor([4, 0, 4]), (torch.randn(4, 3, generator=g) * 9).long())
    _same(got, want)


def test_masked_scatter_broadcasts_the_input_and_the_mask() -> None:
    got, want = lowered(torch.masked_scatter, torch.randn(5), mask45, torch.randn(25))
    _same(got, want)


def test_gather_and_scatter_add_gradients_match_torch_autograd() -> None:
    def fn(x, i):
        return torch.scatter_add(torch.zeros_like(x), 0, i, x.gather(0, i) ** 2)

    forward, params = interop.lower(Fn(fn), (x45, idx), dynamic_batch=False)
    grad = jax.grad(lambda a: (forward(params, (a, jnp.asarray(idx.numpy()))) * 1.5).sum())
    t = x45.clone().requires_grad_()
    (fn(t, idx) * 1.5).sum().backward()
    np.testing.assert_allclose(grad(jnp.asarray(x45.numpy())), t.grad.numpy(), atol=1e-5)


# --- views ---
def test_unfold_and_diagonal_under_a_symbolic_batch() -> None:
    def fn(x):
        return x.unfold(1, 2, 1).sum(-1), x.unfold(2, 3, 2), torch.diagonal(x, 1, 0, 2)

    module = Fn(fn)
    forward, params = interop.lower(module, torch.randn(3, 4, 7), dynamic_batch=True)
    for batch in (2, 5):
        x = torch.randn(batch, 4, 7, generator=g)
        got = jax.jit(forward)(params, interop.to_jax(x))
        with torch.no_grad():
            _same(got, module(x))


class _Strided(torch.nn.Module):
    def __init__(self, view, size, stride, offset=None) -> None:
        super().__init__()
        self.view, self.args = view, (size, stride, offset)

    def forward(self, x):
        return self.view(x * 1).as_strided(*self.args)


@pytest.mark.parametrize(
    ("view", "size", "stride", "offset"),
    [
        (lambda a: a, (3, 3), (1, 5), 2),
        (lambda a: a, (2, 2, 2), (0, 10, 1), 0),  # overlapping reads are fine
        (lambda a: a[:2], (2, 5), (5, 1), 0),  # a view from its base's start, within itself
        (lambda a: a.reshape(5, 4), (4, 5), (1, 4), None),
    ],
)
def test_as_strided_is_exact_on_a_contiguous_input(view, size, stride, offset) -> None:
    module = _Strided(view, size, stride, offset)
    forward, params = interop.lower(module, x45, dynamic_batch=False)
    with torch.no_grad():
        _same(forward(params, interop.to_jax(x45)), module(x45))


@pytest.mark.parametrize(
    ("view", "size", "stride", "offset", "why"),
    [
        (lambda a: a[1:], (2,), (1,), 0, "on a view into a larger tensor"),
        (lambda a: a[:2], (3, 5), (5, 1), 0, "addressing elements outside its input"),
        (lambda a: a, (2, 2), (1, 19), 0, "addressing elements outside its input"),
        (lambda a: a.t(), (2, 2), (1, 2), 0, "on a non-contiguous input"),
    ],
    ids=["view-past-start", "view-past-end", "past-end", "transposed"],
)
def test_as_strided_is_refused_where_it_would_read_outside_its_input(
    view, size, stride, offset, why
) -> None:
    module = _Strided(view, size, stride, offset)
    with pytest.raises(interop.LoweringError, match=re.escape(f"as_strided.default ({why}")):
        interop.lower(module, x45, dynamic_batch=False)


def test_as_strided_scatter_refuses_overlapping_writes() -> None:
    def fn(x, src):
        return torch.as_strided_scatter(x, src, (2, 2), (0, 1))

    _refused(fn, x45, torch.randn(2, 2), match=r"as_strided_scatter.default \(writing overlapping")
    got, want = lowered(
        lambda x, s: torch.as_strided_scatter(x, s, (2, 2), (1, 5), 3), x45, torch.randn(2, 2)
    )
    _same(got, want)


def test_item_as_a_slice_bound_is_refused() -> None:
    _refused(
        lambda x, n: x[: n.item() + 1] * 2, x45, torch.tensor(2),
        match=r"_local_scalar_dense.default \(a size taken from a tensor's value",
    )  # fmt: skip


def test_repeat_interleave_by_a_tensor_lowers_with_its_output_size() -> None:
    repeats = torch.tensor([2, 0, 1, 3])
    got, want = lowered(lambda x, r: x.repeat_interleave(r, dim=0, output_size=6), x45, repeats)
    _same(got, want)
    _refused(
        lambda x, r: x.repeat_interleave(r, dim=0), x45, repeats,
        match=r"repeat_interleave.Tensor \(its output size \(the sum of the repeats\)",
    )  # fmt: skip

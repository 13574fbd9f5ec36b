"""adapters.transforms against independent NumPy-loop references and eva's own torch formulas.

Every transform is run on torch, JAX and NumPy inputs (random, never zeros) and must return
the input's framework. References are written as explicit loops over batch and tokens, so they
share no indexing code with the implementation; the ``eva_*`` functions restate eva's torch
code (ExtractCLSFeatures, ExtractPatchFeatures, AsDiscrete) for exact-equality checks.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.modeling_outputs import BaseModelOutputWithPooling

import specs
from adapters import transforms as T

# ---------------------------------------------------------------------------------------------
# frameworks: make an input from NumPy, check the output kind, read it back for comparison
# ---------------------------------------------------------------------------------------------

FRAMEWORKS = {
    "numpy": (lambda a: a.copy(), np.ndarray),
    "torch": (lambda a: torch.from_numpy(a.copy()), torch.Tensor),
    "jax": (jnp.asarray, jax.Array),
}
FW = sorted(FRAMEWORKS)


def make(fw: str, a: np.ndarray):
    return FRAMEWORKS[fw][0](a)


def back(x) -> np.ndarray:
    """Read an output as NumPy, checking nothing else (the kind is checked separately)."""
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def check_kind(out, fw: str) -> None:
    kind = FRAMEWORKS[fw][1]
    assert isinstance(out, kind), f"{fw} in, {type(out)} out"
    # a torch tensor is not a jax.Array nor an ndarray and vice versa: no silent conversion
    others = [FRAMEWORKS[o][1] for o in FRAMEWORKS if o != fw]
    assert not any(isinstance(out, k) for k in others)


def tokens(batch: int, num_tokens: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, num_tokens, dim)) + 0.5).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# independent references (explicit loops)
# ---------------------------------------------------------------------------------------------


def ref_cls(x, index, num_reg, include_mean):
    batch, num_tokens, dim = x.shape
    width = 2 * dim if include_mean else dim
    out = np.empty((batch, width), np.float64)
    for b in range(batch):
        out[b, :dim] = x[b, index % num_tokens]
        if include_mean:
            acc = np.zeros(dim, np.float64)
            count = 0
            for t in range(1 + num_reg, num_tokens):
                acc += x[b, t]
                count += 1
            out[b, dim:] = acc / count
    return out


def ref_grid(x, has_cls, num_reg, ignore):
    batch, num_tokens, dim = x.shape
    skip = int(has_cls) + num_reg
    side = int(math.sqrt(num_tokens - skip))
    start = num_tokens - side * side if ignore else skip
    out = np.empty((batch, dim, side, side), x.dtype)
    for b in range(batch):
        for i in range(side):
            for j in range(side):
                out[b, :, i, j] = x[b, start + i * side + j]
    return out


def ref_mean_patch(x, has_cls, num_reg):
    skip = int(has_cls) + num_reg
    return np.stack([sum(row[skip:].astype(np.float64)) / (len(row) - skip) for row in x])


def ref_l2(x, axis, eps=1e-12):
    norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=axis, keepdims=True))
    return x / np.maximum(norm, eps)


# eva's formulas, restated in torch (kaiko-ai/eva src/eva/core/models/transforms)


def eva_cls(t, cls_index, num_register_tokens, include_patch_tokens):
    cls = t[:, cls_index, :]
    if include_patch_tokens:
        return torch.cat([cls, t[:, 1 + num_register_tokens :, :].mean(1)], dim=-1)
    return cls


def eva_patch(t, has_cls_token, num_register_tokens, ignore_remaining_dims):
    features = t[:, int(has_cls_token) + num_register_tokens :, :].permute(0, 2, 1)
    batch, hidden, n = features.shape
    h = w = int(math.sqrt(n))
    if h * w != n:
        assert ignore_remaining_dims
        features = features[:, :, -h * w :]
    return [features.reshape(batch, hidden, h, w)]


def eva_as_discrete(t, argmax, to_onehot, threshold):
    if argmax:
        t = torch.argmax(t, dim=1, keepdim=True)
    if to_onehot is not None:
        shape = list(t.shape)
        shape[1] = to_onehot
        t = torch.zeros(shape, dtype=torch.long).scatter_(dim=1, index=t.long(), value=1)
    if threshold is not None:
        t = t >= threshold
    return t


# ---------------------------------------------------------------------------------------------
# cls_token
# ---------------------------------------------------------------------------------------------

# (batch, register tokens, CLS index, include patch mean, grid side)
CLS_CASES = [
    (1, 0, 0, False, 2),
    (3, 0, 0, True, 3),
    (2, 4, 0, True, 2),
    (2, 1, -1, True, 3),
    (4, 4, 5, False, 2),
    (2, 0, 2, True, 4),
]


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(("batch", "num_reg", "index", "include", "side"), CLS_CASES)
def test_cls_token_matches_reference(fw, batch, num_reg, index, include, side):
    x = tokens(batch, 1 + num_reg + side * side, 6, seed=batch + num_reg)
    out = T.cls_token(index, num_reg, include)(make(fw, x))
    check_kind(out, fw)
    assert tuple(out.shape) == (batch, 12 if include else 6)
    assert back(out).dtype == np.float32
    np.testing.assert_allclose(back(out), ref_cls(x, index, num_reg, include), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("batch", "num_reg", "index", "include", "side"), CLS_CASES)
def test_cls_token_equals_eva_formula(batch, num_reg, index, include, side):
    x = torch.from_numpy(tokens(batch, 1 + num_reg + side * side, 5, seed=7))
    assert torch.equal(T.cls_token(index, num_reg, include)(x), eva_cls(x, index, num_reg, include))


# ---------------------------------------------------------------------------------------------
# patch_grid and mean_patch
# ---------------------------------------------------------------------------------------------

# (batch, has CLS, register tokens, grid side, extra leading tokens, ignore_remaining)
PATCH_CASES = [
    (1, True, 0, 2, 0, False),
    (3, True, 4, 3, 0, False),
    (2, False, 0, 4, 0, False),
    (2, False, 2, 1, 0, False),
    (2, True, 0, 3, 2, True),
    (4, True, 4, 2, 3, True),
    (1, True, 1, 5, 0, True),  # square already: ignore_remaining changes nothing
]


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(("batch", "has_cls", "num_reg", "side", "extra", "ignore"), PATCH_CASES)
def test_patch_grid_matches_reference(fw, batch, has_cls, num_reg, side, extra, ignore):
    x = tokens(batch, int(has_cls) + num_reg + extra + side * side, 7, seed=side)
    out = T.patch_grid(has_cls, num_reg, ignore)(make(fw, x))
    assert isinstance(out, list) and len(out) == 1
    check_kind(out[0], fw)
    assert tuple(out[0].shape) == (batch, 7, side, side)
    np.testing.assert_array_equal(back(out[0]), ref_grid(x, has_cls, num_reg, ignore))


@pytest.mark.parametrize(("batch", "has_cls", "num_reg", "side", "extra", "ignore"), PATCH_CASES)
def test_patch_grid_equals_eva_formula(batch, has_cls, num_reg, side, extra, ignore):
    x = torch.from_numpy(tokens(batch, int(has_cls) + num_reg + extra + side * side, 4))
    (ours,) = T.patch_grid(has_cls, num_reg, ignore)(x)
    (theirs,) = eva_patch(x, has_cls, num_reg, ignore)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(("batch", "has_cls", "num_reg", "side", "extra", "ignore"), PATCH_CASES)
def test_mean_patch_matches_reference(fw, batch, has_cls, num_reg, side, extra, ignore):
    x = tokens(batch, int(has_cls) + num_reg + extra + side * side, 7, seed=3)
    out = T.mean_patch(has_cls, num_reg)(make(fw, x))
    check_kind(out, fw)
    np.testing.assert_allclose(back(out), ref_mean_patch(x, has_cls, num_reg), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fw", ["numpy", "torch"])
def test_token_extractors_return_views_not_copies(fw):
    """For torch and NumPy the CLS token and the patch grid share the input's buffer."""
    x = make(fw, tokens(2, 1 + 2 + 9, 4))
    cls = T.cls_token(num_register_tokens=2)(x)
    (grid,) = T.patch_grid(num_register_tokens=2)(x)
    if fw == "torch":
        base = x.untyped_storage().data_ptr()
        assert cls.untyped_storage().data_ptr() == base
        assert grid.untyped_storage().data_ptr() == base
        assert grid.data_ptr() == x[:, 3:, :].data_ptr()
    else:
        assert np.shares_memory(cls, x) and np.shares_memory(grid, x)
        assert grid.__array_interface__["data"][0] == x[:, 3:, :].__array_interface__["data"][0]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    batch=st.integers(1, 3),
    has_cls=st.booleans(),
    num_reg=st.integers(0, 4),
    side=st.integers(1, 5),
    extra=st.integers(0, 4),
    dim=st.integers(1, 5),
    fw=st.sampled_from(FW),
)
def test_patch_grid_and_cls_shapes_property(batch, has_cls, num_reg, side, extra, dim, fw):
    n = side * side + extra
    x = tokens(batch, int(has_cls) + num_reg + n, dim, seed=n)
    square = math.isqrt(n) ** 2 == n
    grid_fn = T.patch_grid(has_cls, num_reg, ignore_remaining=not square or extra % 2 == 0)
    (grid,) = grid_fn(make(fw, x))
    check_kind(grid, fw)
    np.testing.assert_array_equal(back(grid), ref_grid(x, has_cls, num_reg, True))
    if not square:
        with pytest.raises(ValueError, match=f"{n} patch tokens"):
            T.patch_grid(has_cls, num_reg)(make(fw, x))
    if has_cls:
        index = (batch * 7 + n) % x.shape[1]
        out = T.cls_token(index, num_reg, include_patch_mean=True)(make(fw, x))
        np.testing.assert_allclose(
            back(out), ref_cls(x, index, num_reg, True), rtol=1e-5, atol=1e-6
        )


# ---------------------------------------------------------------------------------------------
# model outputs: hidden_state, select, and the duck-typed last_hidden_state
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PlainOutput:
    last_hidden_state: object
    extra: object = None


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize("wrap", ["transformers", "dataclass"])
def test_extractors_accept_model_output_objects(fw, wrap):
    x = tokens(2, 1 + 16, 3)
    arr = make(fw, x)
    output = (
        BaseModelOutputWithPooling(last_hidden_state=arr)
        if wrap == "transformers"
        else PlainOutput(arr)
    )
    np.testing.assert_array_equal(back(T.cls_token()(output)), back(T.cls_token()(arr)))
    np.testing.assert_array_equal(back(T.patch_grid()(output)[0]), ref_grid(x, True, 0, False))
    np.testing.assert_allclose(back(T.mean_patch()(output)), ref_mean_patch(x, True, 0), rtol=1e-5)


def test_hidden_state_picks_fields_and_elements():
    hidden = torch.randn(2, 5, 3)
    pooled = torch.randn(2, 3)
    output = BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)
    assert T.hidden_state()(output) is hidden
    assert T.hidden_state("pooler_output")(output) is pooled
    assert T.hidden_state(1)(output) is pooled  # as output.to_tuple()[1]
    assert T.hidden_state(-1)((hidden, pooled)) is pooled
    assert T.hidden_state("x_norm_clstoken")({"x_norm_clstoken": pooled}) is pooled
    assert T.hidden_state("extra")(PlainOutput(hidden, pooled)) is pooled


@pytest.mark.parametrize(
    ("name", "output", "error", "match"),
    [
        ("hidden_states", "model_output", ValueError, "output_hidden_states=True"),
        ("logits", "model_output", ValueError, "no field 'logits'.*last_hidden_state"),
        ("missing", {"a": 1}, ValueError, r"expected one of: a\b"),
        (2, ("a", "b"), IndexError, r"out of range .* 2 elements.*\[-2, 1\]"),
        (-3, ["a", "b"], IndexError, "out of range"),
        (0, {"a": 1}, TypeError, "tuple, a list or a transformers output"),
    ],
)
def test_hidden_state_errors(name, output, error, match):
    if output == "model_output":
        output = BaseModelOutputWithPooling(last_hidden_state=torch.randn(1, 2, 3))
    with pytest.raises(error, match=match):
        T.hidden_state(name)(output)


def test_select_picks_maps_in_order():
    maps = [np.full((1, 2, 2, 2), float(i + 1)) for i in range(4)]
    assert T.select([2, 0])(maps) == [maps[2], maps[0]]
    assert T.select(-1)(tuple(maps))[0] is maps[3]
    assert T.select(specs.Select([1, 1]).indices)(maps) == [maps[1], maps[1]]
    with pytest.raises(IndexError, match=r"index 4 is out of range for 4 feature maps.*\[-4, 3\]"):
        T.select([0, 4])(maps)
    with pytest.raises(TypeError, match="list or tuple of feature maps"):
        T.select(0)(maps[0])


# ---------------------------------------------------------------------------------------------
# as_discrete and l2_normalize
# ---------------------------------------------------------------------------------------------

# (argmax, to_onehot, threshold, dim, keepdim, input shape)
DISCRETE_CASES = [
    (True, None, None, 1, True, (3, 4)),
    (True, None, None, 1, False, (2, 5, 3)),
    (True, 5, None, 1, True, (2, 5, 3, 3)),
    (True, 4, None, 1, False, (3, 4)),  # one-hot puts the class axis back
    (False, None, 0.3, 1, True, (2, 3, 2)),
    (True, 3, 0.5, 1, True, (4, 3)),
    (True, None, None, -1, True, (2, 3, 6)),
    (True, 6, None, -1, True, (2, 3, 6)),
]


def ref_discrete(x, argmax, to_onehot, threshold, dim, keepdim):
    axis = dim % x.ndim
    if argmax:
        moved = np.moveaxis(x, axis, -1)
        labels = np.empty(moved.shape[:-1], np.int64)
        for idx in np.ndindex(labels.shape):
            row = list(moved[idx])
            labels[idx] = row.index(max(row))
        x = np.expand_dims(labels, axis) if keepdim or to_onehot is not None else labels
    if to_onehot is not None:
        shape = list(x.shape)
        shape[axis] = to_onehot
        hot = np.zeros(shape, np.int64)
        for idx in np.ndindex(x.shape):
            target = list(idx)
            target[axis] = int(x[idx])
            hot[tuple(target)] = 1
        x = hot
    if threshold is not None:
        x = x >= threshold
    return x


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(
    ("argmax", "onehot", "threshold", "dim", "keepdim", "shape"), DISCRETE_CASES
)
def test_as_discrete_matches_reference(fw, argmax, onehot, threshold, dim, keepdim, shape):
    x = np.random.default_rng(len(shape)).random(shape).astype(np.float32)
    out = T.as_discrete(argmax, onehot, threshold, dim, keepdim)(make(fw, x))
    check_kind(out, fw)
    expected = ref_discrete(x, argmax, onehot, threshold, dim, keepdim)
    assert tuple(out.shape) == expected.shape
    np.testing.assert_array_equal(back(out), expected)
    if threshold is not None:
        assert back(out).dtype == np.bool_
    elif argmax or onehot:
        assert np.issubdtype(back(out).dtype, np.integer)


@pytest.mark.parametrize(
    ("argmax", "onehot", "threshold", "shape"),
    [(True, None, None, (3, 4, 2)), (True, 4, None, (3, 4, 2)), (False, 3, None, (5, 1)),
     (False, None, 0.5, (3, 4)), (True, 4, 1, (2, 4))],
)  # fmt: skip
def test_as_discrete_equals_eva_formula(argmax, onehot, threshold, shape):
    x = torch.rand(shape)
    if not argmax and onehot:
        x = torch.randint(0, onehot, shape).float()
    ours = T.as_discrete(argmax, onehot, threshold)(x)
    theirs = eva_as_discrete(x, argmax, onehot, threshold)
    assert ours.dtype == theirs.dtype
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(("axis", "shape"), [(-1, (3, 8)), (1, (2, 4, 3, 3)), (0, (5, 2))])
def test_l2_normalize_matches_reference(fw, axis, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    x[0] = 0.0 if axis != 0 else x[0]  # a zero vector must stay zero (eps), not become NaN
    out = T.l2_normalize(axis)(make(fw, x))
    check_kind(out, fw)
    np.testing.assert_allclose(back(out), ref_l2(x, axis), rtol=1e-5, atol=1e-6)
    if fw == "torch":
        expected = torch.nn.functional.normalize(torch.from_numpy(x), dim=axis)
        torch.testing.assert_close(out, expected)
    (first, second) = T.l2_normalize(axis)([make(fw, x), make(fw, 2 * x)])
    np.testing.assert_allclose(back(first), back(second), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# errors on bad input: name the expected shape and what was got
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(
    ("fn", "shape", "error", "match"),
    [
        (T.cls_token(), (2, 8), ValueError, r"\(batch, tokens, dim\), got shape \(2, 8\) \(2-D\)"),
        (T.cls_token(index=5), (2, 5, 3), IndexError, r"tokens > 5, dim\), got \(2, 5, 3\)"),
        (T.cls_token(index=-6), (2, 5, 3), IndexError, r"tokens > 5, dim\), got \(2, 5, 3\)"),
        (T.cls_token(num_register_tokens=4, include_patch_mean=True), (1, 5, 3), ValueError,
         r"tokens > 5, dim\), got \(1, 5, 3\)"),
        (T.patch_grid(), (2, 1 + 20, 3), ValueError,
         r"20 patch tokens \(of 21 tokens.*such as 17 or 26.*ignore_remaining=True"),
        (T.patch_grid(num_register_tokens=4), (2, 5, 3), ValueError, r"tokens > 5, dim\)"),
        (T.patch_grid(), (2, 3, 4, 4), ValueError, r"got shape \(2, 3, 4, 4\) \(4-D\)"),
        (T.mean_patch(has_cls_token=False, num_register_tokens=3), (1, 3, 2), ValueError,
         r"tokens > 3, dim\)"),
        (T.as_discrete(to_onehot=3), (2, 3), ValueError, r"shape \(2, 1\), got \(2, 3\)"),
        (T.as_discrete(argmax=True, dim=2), (2, 3), IndexError, r"shape \(2, 3\).*\[-2, 1\]"),
        (T.l2_normalize(axis=3), (2, 3), IndexError, r"axis 3 is out of range .* \(2, 3\)"),
    ],
)  # fmt: skip
def test_bad_input_names_expected_and_got(fw, fn, shape, error, match):
    x = make(fw, np.ones(shape, np.float32))
    with pytest.raises(error, match=match):
        fn(x)


@pytest.mark.parametrize(
    "fn", [T.cls_token(), T.patch_grid(), T.mean_patch(), T.as_discrete(), T.l2_normalize()]
)
def test_non_array_input_is_a_type_error(fn):
    with pytest.raises(TypeError, match=r"torch.Tensor, jax.Array or numpy.ndarray.*got"):
        fn([[1.0, 2.0]])


@pytest.mark.parametrize(
    ("make_fn", "match"),
    [
        (lambda: T.cls_token(index=0.5), r"'index' must be an integer, got 0.5"),
        (lambda: T.cls_token(num_register_tokens=-1), r"integer >= 0, got -1"),
        (lambda: T.patch_grid(has_cls_token=1), r"'has_cls_token' must be True or False"),
        (lambda: T.mean_patch(num_register_tokens="4"), r"integer >= 0, got '4'"),
        (lambda: T.hidden_state(""), r"'name' must be a field name"),
        (lambda: T.select([]), r"non-empty list of integers, got \[\]"),
        (lambda: T.select(["a"]), r"non-empty list of integers"),
        (lambda: T.as_discrete(to_onehot=0), r"'to_onehot' must be an integer >= 1"),
        (lambda: T.as_discrete(threshold="0.5"), r"'threshold' must be a number"),
        (lambda: T.l2_normalize(axis=None), r"'axis' must be an integer"),
        (lambda: T.l2_normalize(eps=-1.0), r"'eps' must be a number >= 0, got -1.0 \(float\)"),
        (lambda: T.l2_normalize(eps="0"), r"'eps' must be a number >= 0, got '0' \(str\)"),
        (lambda: T.chain(T.cls_token(), "l2"), r"argument 1 must be a transform"),
        (lambda: T.from_spec("cls_token"), r"specs.ClsToken.*got 'cls_token'"),
        (lambda: T.from_specs([specs.ClsToken(), None]), r"transforms\[1\]"),
    ],
)
def test_bad_arguments_fail_when_the_transform_is_made(make_fn, match):
    with pytest.raises(TypeError, match=match):
        make_fn()


# ---------------------------------------------------------------------------------------------
# chain and records
# ---------------------------------------------------------------------------------------------


def test_chain_is_left_to_right_and_empty_is_identity():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    assert T.chain()(x) is x
    add, double = (lambda a: a + 1), (lambda a: a * 2)
    np.testing.assert_array_equal(T.chain(add, double)(x), (x + 1) * 2)
    np.testing.assert_array_equal(T.chain(double, add)(x), x * 2 + 1)
    np.testing.assert_array_equal(T.chain(T.chain(add), T.chain(double, add))(x), (x + 1) * 2 + 1)


# (record, the factory call it names, input shape)
RECORD_CASES = [
    (specs.ClsToken(), T.cls_token(), (2, 10, 4)),
    (specs.ClsToken(index=2, num_register_tokens=1, include_patch_mean=True),
     T.cls_token(2, 1, True), (2, 6, 4)),
    (specs.PatchGrid(has_cls_token=False, num_register_tokens=2), T.patch_grid(False, 2), (2, 6, 3)),
    (specs.PatchGrid(ignore_remaining=True), T.patch_grid(ignore_remaining=True), (2, 7, 3)),
    (specs.MeanPatch(num_register_tokens=3), T.mean_patch(True, 3), (3, 8, 2)),
    (specs.HiddenState(0), T.hidden_state(0), (2, 3)),
    (specs.Select([1, 0]), T.select([1, 0]), (2, 3)),
    (specs.AsDiscrete(argmax=True, keepdim=True), T.as_discrete(argmax=True), (3, 5)),
    (specs.AsDiscrete(argmax=True, to_onehot=5, threshold=1.0), T.as_discrete(True, 5, 1.0),
     (3, 5)),
    (specs.L2Normalize(axis=0), T.l2_normalize(0), (3, 5)),
]  # fmt: skip


@pytest.mark.parametrize("fw", FW)
@pytest.mark.parametrize(("record", "factory_fn", "shape"), RECORD_CASES)
def test_from_spec_equals_the_factory(fw, record, factory_fn, shape):
    x = make(fw, np.random.default_rng(2).standard_normal(shape).astype(np.float32))
    if isinstance(record, (specs.HiddenState, specs.Select)):
        x = [x, x * 2]
    ours, expected = T.from_spec(record)(x), factory_fn(x)
    as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
    for a, b in zip(as_list(ours), as_list(expected), strict=True):
        check_kind(a, fw)
        np.testing.assert_array_equal(back(a), back(b))


def test_from_spec_covers_every_transform_record():
    covered = {type(record) for record, _, _ in RECORD_CASES}
    assert covered == set(specs.TRANSFORM_TYPES)
    for record_type in specs.TRANSFORM_TYPES:
        record = record_type([0]) if record_type is specs.Select else record_type()
        assert callable(T.from_spec(record))


def test_from_specs_chains_records_in_order():
    x = tokens(2, 1 + 4 + 9, 6)
    records = (
        specs.HiddenState(),
        specs.ClsToken(num_register_tokens=4, include_patch_mean=True),
        specs.L2Normalize(),
    )
    out = T.from_specs(records)(PlainOutput(torch.from_numpy(x)))
    check_kind(out, "torch")
    np.testing.assert_allclose(back(out), ref_l2(ref_cls(x, 0, 4, True), -1), rtol=1e-5)
    assert T.from_specs([])(x) is x


# ---------------------------------------------------------------------------------------------
# under jax.jit and torch.compile
# ---------------------------------------------------------------------------------------------

JIT_CASES = {
    "cls": (T.cls_token(1, 2, True), (2, 1 + 2 + 9, 4)),
    "cls_negative": (T.cls_token(-1), (2, 5, 4)),
    "grid": (T.chain(T.patch_grid(True, 1, True), T.select(0)), (2, 1 + 1 + 2 + 16, 3)),
    "mean": (T.mean_patch(False, 2), (3, 6, 4)),
    "discrete": (T.as_discrete(True, 4, 0.5), (3, 4, 2)),
    "l2": (T.chain(T.patch_grid(), T.l2_normalize(1)), (2, 10, 5)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(JIT_CASES))
def test_under_jax_jit(case):
    fn, shape = JIT_CASES[case]
    x = jnp.asarray(np.random.default_rng(4).standard_normal(shape).astype(np.float32))
    jitted, eager = jax.jit(fn)(x), fn(x)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        check_kind(a, "jax")
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_under_torch_compile_without_graph_breaks():
    """One compiled function through every array transform (compiling is slow: one test).

    ``aot_eager`` runs the whole dynamo + AOT-autograd trace (``fullgraph=True`` fails on any
    graph break) without inductor's C++ build, which would cost ~30 s of this suite.
    """
    cls = T.chain(T.hidden_state(), T.cls_token(0, 4, True), T.l2_normalize())
    grid = T.chain(T.patch_grid(True, 4), T.select(0), T.l2_normalize(1))
    labels = T.as_discrete(argmax=True, to_onehot=6, threshold=1)

    def features(x):
        return cls(PlainOutput(x)), grid(x), labels(mean(x)), mean(x)

    mean = T.mean_patch(True, 4)
    x = torch.from_numpy(tokens(2, 1 + 4 + 9, 6))
    compiled = torch.compile(features, fullgraph=True, backend="aot_eager")
    for a, b in zip(compiled(x), features(x), strict=True):
        check_kind(a[0] if isinstance(a, list) else a, "torch")
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------------------
# eva configs: the records specs loads from eva's YAML give eva's numbers
# ---------------------------------------------------------------------------------------------

_EVA_CONFIG = """
class_path: eva.models.wrappers.ModelFromFunction
init_args:
  path: timm.create_model
  arguments: {{model_name: vit_tiny_patch16_224, pretrained: false}}
  tensor_transforms:
    class_path: eva.core.models.transforms.{name}
    init_args: {args}
"""

# (eva class, its init_args, eva's formula, input shape)
EVA_CASES = [
    ("ExtractCLSFeatures", {}, lambda t: eva_cls(t, 0, 0, False), (2, 1 + 9, 4)),
    ("ExtractCLSFeatures", {"cls_index": 1, "num_register_tokens": 4, "include_patch_tokens": True},
     lambda t: eva_cls(t, 1, 4, True), (2, 1 + 4 + 9, 4)),
    ("ExtractPatchFeatures", {"num_reg_tokens": 4}, lambda t: eva_patch(t, True, 4, False)[0],
     (2, 1 + 4 + 16, 3)),
    ("ExtractPatchFeatures", {"has_cls_token": False, "ignore_remaining_dims": True},
     lambda t: eva_patch(t, False, 0, True)[0], (2, 3 + 9, 3)),
    ("AsDiscrete", {"argmax": True, "to_onehot": 4}, lambda t: eva_as_discrete(t, True, 4, None),
     (3, 4, 2)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args", "eva", "shape"), EVA_CASES)
def test_eva_config_transforms_give_evas_numbers(name, args, eva, shape):
    spec = specs.loads(_EVA_CONFIG.format(name=name, args=args or "{}"))
    x = torch.from_numpy(tokens(*shape))
    ours = T.from_specs(spec.transforms)(x)
    ours = ours[0] if isinstance(ours, list) else ours
    assert torch.equal(ours, eva(x))


def test_concat_mean_patch_tokens_rewrite_gives_evas_numbers():
    # the rewrite that the SpecError for eva's TimmModel(concat_mean_patch_tokens=True) gives
    import timm

    import adapters

    arch = {"img_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2}
    arch["reg_tokens"] = 4
    config = {
        "class_path": "eva.vision.models.wrappers.TimmModel",
        "init_args": {
            "model_name": "vit_tiny_patch16_224",
            "pretrained": False,
            "model_kwargs": {**arch, "num_classes": 0, "global_pool": ""},
            "tensor_transforms": {
                "class_path": "eva.models.networks.transforms.ExtractCLSFeatures",
                "init_args": {"include_patch_tokens": True, "num_register_tokens": 4},
            },
        },
    }
    backbone = adapters.build(specs.structure(config))
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **arch)
    model.load_state_dict(backbone.params)
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # eva's TimmModel.model_forward with concat_mean_patch_tokens=True
        out = model.forward_features(x)
        expected = torch.cat([out[:, 0], out[:, model.num_prefix_tokens :].mean(1)], dim=-1)
        ours = backbone(x)
    assert ours.shape == (2, 32)
    torch.testing.assert_close(ours, expected)

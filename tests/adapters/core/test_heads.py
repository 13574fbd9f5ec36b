"""adapters.heads: Flax heads against plain NumPy maths, the jitted optax step against a
separately built reference, and fit/predict from every array type the bridge accepts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import interop
from adapters import heads


def _blobs(n: int = 240, dim: int = 16, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(k, dim))
    y = np.arange(n) % k
    x = centres[y] + rng.normal(0, 1, size=(n, dim))
    return x.astype(np.float32), y.astype(np.int64)


def _gelu(x: np.ndarray) -> np.ndarray:
    return np.asarray(jax.nn.gelu(jnp.asarray(x)))


@pytest.mark.parametrize(
    ("head", "reference"),
    [
        (
            heads.LinearHead(num_classes=5),
            lambda p, x: x @ p["linear"]["kernel"] + p["linear"]["bias"],
        ),
        (
            heads.MLPHead(num_classes=5, hidden=8),
            lambda p, x: (
                _gelu(x @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"]) @ p["out"]["kernel"]
                + p["out"]["bias"]
            ),
        ),
    ],
    ids=["linear", "mlp"],
)
def test_head_matches_numpy(head, reference):
    x = np.random.default_rng(1).normal(size=(7, 12)).astype(np.float32)
    params = head.init(jax.random.PRNGKey(0), x)
    p = jax.tree_util.tree_map(np.asarray, params["params"])
    np.testing.assert_allclose(head.apply(params, x), reference(p, x), rtol=1e-5, atol=1e-5)


def test_train_step_matches_separate_reference():
    x, y = _blobs(32, 6, 3)
    module = heads.LinearHead(num_classes=3)
    params = module.init(jax.random.PRNGKey(0), x)
    opt = optax.adamw(1e-2)
    state = opt.init(params)
    step = heads.make_train_step(module, opt)
    new_params, _, loss = step(params, state, x, y)

    def loss_fn(p):
        return optax.softmax_cross_entropy_with_integer_labels(module.apply(p, x), y).mean()

    ref_loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
    updates, _ = opt.update(grads, state, params)
    ref_params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for a, b in zip(
        jax.tree_util.tree_leaves(new_params), jax.tree_util.tree_leaves(ref_params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "head"),
    [("numpy", "linear"), ("torch", "linear"), ("jax", "linear"), ("numpy", "mlp")],
)
def test_fit_predict_any_array(kind, head):
    x, y = _blobs()
    convert = {"numpy": lambda a: a, "torch": torch.from_numpy, "jax": jnp.asarray}[kind]
    tr, va, te = slice(0, 160), slice(160, 200), slice(200, 240)
    fitted = heads.fit(
        convert(x[tr]),
        convert(y[tr]),
        head=head,
        val=(convert(x[va]), convert(y[va])),
        epochs=30,
        batch_size=32,
        learning_rate=1e-2,
    )
    pred = heads.predict(fitted, convert(x[te]))
    assert pred.shape == (40,)
    assert (pred == y[te]).mean() > 0.9  # well-separated blobs; chance is 1/3
    logits = heads.predict(fitted, x[te], logits=True)
    assert logits.shape == (40, 3)
    np.testing.assert_array_equal(logits.argmax(-1), pred)
    # early selection: the kept epoch is the best on validation
    accs = fitted.history["val_accuracy"]
    assert len(accs) == 30 and accs[fitted.best_epoch] == max(accs)


def _floored_std(x: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """The divisor `fit` documents, in plain NumPy: the std, at least ``floor`` x its mean."""
    std = x.std(0)
    return np.maximum(std, floor * std.mean())


def _dead_channels(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blobs (240, 8) plus 6 channels that barely fire on the first 160 (training) rows and
    fire on the other 80, as an ImageNet backbone's near-dead units do on sklearn digits
    (there: std < 1e-4 on the training split, up to 0.2 on a few new rows, typical std 0.2).

    Returns x (240, 14), y (240,) and the train mask."""
    x, y = _blobs(240, 8, 3, seed)
    rng = np.random.default_rng(seed + 1)
    dead = np.zeros((240, 6), np.float32)
    dead[rng.choice(160, 6, replace=False), np.arange(6)] = 1e-3  # one tiny activation each
    dead[160:] = rng.uniform(0, 0.5, size=(80, 6))
    train = np.arange(240) < 160
    return np.concatenate([x, dead], axis=1), y, train


@pytest.mark.slow
def test_fit_standardises_with_train_statistics():
    x, y, train = _dead_channels()
    fitted = heads.fit(x[train], y[train], epochs=1)
    np.testing.assert_allclose(fitted.mean, x[train].mean(0), rtol=1e-5, atol=1e-5)
    std = _floored_std(x[train])
    assert (std[8:] > 1e3 * x[train, 8:].std(0)).all()  # the floor is what divides these
    np.testing.assert_allclose(fitted.std, std, rtol=1e-5)
    expected = fitted.module.apply(fitted.params, (x - x[train].mean(0)) / std)
    np.testing.assert_allclose(
        heads.predict(fitted, x, logits=True), expected, rtol=1e-5, atol=1e-5
    )


def test_near_constant_training_channels_do_not_swamp_new_rows():
    """Divided by their own std (~1e-4) the dead channels reach ~10^3 sigma on new rows and
    decide the class (accuracy ~1/3 here); floored, the blobs decide it."""
    x, y, train = _dead_channels()
    fitted = heads.fit(x[train], y[train], epochs=30, batch_size=32, learning_rate=1e-2)
    new = ~train
    assert (heads.predict(fitted, x[new]) == y[new]).mean() > 0.9  # chance is 1/3
    z = (x[new] - fitted.mean) / fitted.std
    assert np.abs(z[:, 8:]).max() < 10  # at most 0.5 / (0.1 x mean std) on these rows


@pytest.mark.parametrize("std_floor", [0.1, 0.0])
def test_constant_channels_are_divided_by_one(std_floor):
    """A channel with zero spread is centred, not scaled (as sklearn's StandardScaler does);
    with every channel constant there is no scale to floor at."""
    x = np.tile(np.float32([[2.0, -3.0, 0.0]]), (12, 1))
    y = np.arange(12) % 2
    fitted = heads.fit(x, y, epochs=1, std_floor=std_floor)
    np.testing.assert_array_equal(fitted.std, [1.0, 1.0, 1.0])
    assert np.isfinite(heads.predict(fitted, x + 1, logits=True)).all()


def test_aligned_numpy_reaches_jax_without_copy():
    from adapters._src.app.embeddings import aligned_empty

    x = aligned_empty((64, 8), np.float32)
    x[...] = np.random.default_rng(0).normal(size=x.shape)
    xj = interop.to_jax(x, copy=False)
    assert interop.data_ptr(xj) == interop.data_ptr(x)


@pytest.mark.slow
@settings(max_examples=3, deadline=None)
@given(n=st.integers(2, 20), dim=st.integers(1, 9), k=st.integers(2, 6))
def test_predict_shapes(n, dim, k):
    rng = np.random.default_rng(n * 100 + dim)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = (np.arange(n) % k).astype(np.int32)
    fitted = heads.fit(x, y, num_classes=k, epochs=1, batch_size=4)
    assert heads.predict(fitted, x).shape == (n,)
    assert heads.predict(fitted, x, logits=True).shape == (n, k)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"x": np.zeros((4,), np.float32), "y": np.zeros(4, np.int64)},
            r"x: expected a \(batch, dim\)",
        ),
        ({"x": np.zeros((4, 2), np.float32), "y": np.zeros(3, np.int64)}, r"y: expected \(4,\)"),
        ({"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.float32)}, "integer class"),
        (
            {"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.int64), "head": "conv"},
            "head: expected one of linear, mlp",
        ),
        (
            {"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.int64), "epochs": 0},
            "expected >= 1",
        ),
        (
            {"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.int64), "std_floor": -0.1},
            r"std_floor: expected a finite number >= 0 .* got -0.1",
        ),
        (
            {"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.int64), "std_floor": np.nan},
            r"std_floor: expected a finite number >= 0 .* got nan",
        ),
    ],
    ids=["x-rank", "y-length", "y-dtype", "head-name", "epochs", "std-floor", "std-floor-nan"],
)
def test_fit_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        heads.fit(**kwargs)


def test_public_names_import():
    for name in heads.__all__:
        assert getattr(heads, name) is not None

"""Train mode: ``interop.lower(module, x, train=True)`` gives
``forward(params, x, *, key) -> (y, new_buffers)``, compared with torch's own train mode.

Real modules (a tiny timm ResNet, torch's Dropout, timm's DropPath); torch's train-mode
forward is the reference for batch statistics, running statistics and gradients; dropout is
checked against the binomial law of its mask (``Z`` standard deviations: a correct dropout
fails with probability below 1e-8).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from timm.layers import DropPath
from timm.models.resnet import BasicBlock, ResNet

import interop

Z = 6.0
KEY = jax.random.key(0)


def _resnet(**kwargs) -> ResNet:
    torch.manual_seed(0)
    return ResNet(
        BasicBlock,
        (1, 1, 1, 1),
        channels=(8, 16, 32, 64),
        stem_width=8,
        num_classes=10,
        zero_init_last=False,
        **kwargs,
    )


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def _copies(params: dict) -> dict:
    """Params not sharing the module's memory: torch's own train step below writes its buffers
    in place, and JAX reads the shared ones when it runs (asynchronously)."""
    return {k: jnp.array(v, copy=True) for k, v in params.items()}


def test_a_train_step_of_a_resnet_updates_the_running_statistics_as_torch() -> None:
    model, x = _resnet().eval(), _x(4, 3, 32, 32)
    forward, params = interop.lower(model, x, train=True)
    assert not model.training  # its mode is restored
    params = _copies(params)
    y, new = jax.jit(forward)(params, jnp.asarray(x.numpy()), key=KEY)
    model.train()
    with torch.no_grad():
        want = model(x)  # batch statistics, and the running ones updated in place
    state = model.state_dict()
    updated = {k for k in state if k.endswith(("running_mean", "running_var", "batches_tracked"))}
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert set(new) == updated and len(updated) == 3 * norms
    for k, v in new.items():
        np.testing.assert_allclose(np.asarray(v), state[k].numpy(), rtol=1e-5, atol=1e-5)
        assert not np.array_equal(np.asarray(v), np.asarray(params[k]))  # they did move
    np.testing.assert_allclose(np.asarray(y), want.numpy(), rtol=1e-4, atol=1e-4)
    # back into torch: eval mode with the new statistics is JAX's eval mode on them
    interop.load_params(model, {**params, **new})
    model.eval()
    evaluate, _ = interop.lower(model, x)
    with torch.no_grad():
        np.testing.assert_allclose(
            np.asarray(evaluate({**params, **new}, jnp.asarray(x.numpy()))),
            model(x).numpy(),
            rtol=1e-5,
            atol=1e-5,
        )


def test_train_mode_gradients_equal_torch_autograd_with_dropout_off() -> None:
    model, x = _resnet(drop_rate=0.0, drop_path_rate=0.0), _x(4, 3, 32, 32)
    forward, params = interop.lower(model, x, train=True)
    params = _copies(params)
    trainable = {k for k, _ in model.named_parameters()}
    w = _x(4, 10)

    def loss(p: dict) -> jax.Array:
        y, _ = forward({**params, **p}, jnp.asarray(x.numpy()), key=KEY)
        return jnp.sum(y * jnp.asarray(w.numpy()))

    grads = jax.jit(jax.grad(loss))({k: params[k] for k in trainable})
    model.train().requires_grad_(True)
    (model(x) * w).sum().backward()
    for name, p in model.named_parameters():
        want = p.grad.numpy()
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(np.asarray(grads[name]), want, atol=1e-4 * scale + 1e-6)


class _Drop(torch.nn.Module):
    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.lin, self.layer = torch.nn.Linear(6, 6), layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.lin(x))


def test_dropout_at_p_0_is_eval_mode() -> None:
    model, x = _Drop(torch.nn.Dropout(0.0)), _x(5, 6)
    train, params = interop.lower(model, x, train=True)
    evaluate, _ = interop.lower(model, x)
    xj = jnp.asarray(x.numpy())
    y, new = train(params, xj, key=KEY)
    assert new == {}
    np.testing.assert_array_equal(np.asarray(y), np.asarray(evaluate(params, xj)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("layer", [torch.nn.Dropout, DropPath])
def test_the_kept_fraction_is_1_minus_p_within_a_binomial_bound(layer, p: float) -> None:
    """Dropout keeps each element, drop-path each example (row), with probability ``1 - p``,
    and scales what it keeps by ``1 / (1 - p)``."""
    n = 20_000
    model = torch.nn.Sequential(layer(p))
    forward, params = interop.lower(model, torch.ones(n, 8), train=True, dynamic_batch=False)
    y, _ = jax.jit(forward)(params, jnp.ones((n, 8)), key=KEY)
    y = np.asarray(y)
    kept = y != 0
    if layer is DropPath:
        assert (kept == kept[:, :1]).all()  # whole rows
        kept = kept[:, 0]
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    bound = Z * math.sqrt(p * (1 - p) / kept.size)
    assert abs(kept.mean() - (1 - p)) <= bound, (kept.mean(), 1 - p, bound)


def test_one_key_gives_one_output_under_jit_and_vmap_gives_one_per_key() -> None:
    model, x = _Drop(torch.nn.Dropout(0.5)), _x(3, 6)
    forward, params = interop.lower(model, x, train=True)
    xj = jnp.asarray(x.numpy())
    step = jax.jit(lambda k: forward(params, xj, key=k)[0])
    a, b = np.asarray(step(KEY)), np.asarray(step(KEY))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.asarray(forward(params, xj, key=KEY)[0]), a, rtol=1e-6)
    assert not np.array_equal(np.asarray(step(jax.random.key(1))), a)
    masks = np.asarray(jax.vmap(step)(jax.random.split(KEY, 8))) != 0
    assert len({m.tobytes() for m in masks}) == 8
    raw = np.asarray(step(jax.random.PRNGKey(0)))  # a raw uint32 key works too
    assert raw.shape == a.shape


def test_the_key_is_asked_for_when_the_module_draws_and_checked() -> None:
    model, x = _Drop(torch.nn.Dropout(0.5)), _x(3, 6)
    forward, params = interop.lower(model, x, train=True)
    xj = jnp.asarray(x.numpy())
    with pytest.raises(ValueError, match=r"aten\.native_dropout\.default.*key=jax\.random\.key"):
        forward(params, xj)
    with pytest.raises(TypeError, match=r"key must be one jax\.random key"):
        forward(params, xj, key=0)
    with pytest.raises(TypeError, match=r"key must be one jax\.random key"):
        forward(params, xj, key=jax.random.split(KEY, 2))
    plain, params = interop.lower(torch.nn.Linear(6, 2), x, train=True)
    y, new = plain(params, xj)  # nothing random: no key needed
    assert y.shape == (3, 2) and new == {}


class _Noisy(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_eval_mode_refuses_a_random_op_and_says_train_mode_takes_a_key() -> None:
    with pytest.raises(interop.LoweringError, match=r"aten\.rand_like\.default \(draws random"):
        interop.lower(_Noisy(), _x(2, 3))
    forward, params = interop.lower(_Noisy(), _x(2, 3), train=True)
    y, _ = forward(params, jnp.zeros((2, 3)), key=KEY)
    assert 0 <= float(y.min()) and float(y.max()) < 1


class _Writes(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.add_(1)
        return x * 2


def test_train_mode_still_refuses_writing_an_input() -> None:
    with pytest.raises(interop.LoweringError, match="mutates state"):
        interop.lower(_Writes(), _x(2, 3), train=True)


def test_train_mode_batch_norm_with_a_symbolic_batch() -> None:
    """One jax.export artifact for every batch size; the running variance's n / (n - 1)
    follows the batch given."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    forward, params = interop.lower(model, _x(2, 3, 8, 8), train=True)
    params = _copies(params)
    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, 3, 8, 8), jnp.float32)
    exported = jax.export.export(jax.jit(lambda p, x: forward(p, x)))(params, spec)
    for n in (3, 5):
        x = _x(n, 3, 8, 8)
        y, new = exported.call(params, jnp.asarray(x.numpy()))
        reference = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        reference.load_state_dict(model.state_dict())
        with torch.no_grad():
            want = reference.train()(x)
        np.testing.assert_allclose(np.asarray(y), want.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            np.asarray(new["1.running_var"]), reference[1].running_var.numpy(), rtol=1e-5
        )


def test_train_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="expected train to be True or False, got 'yes'"):
        interop.lower(torch.nn.Linear(2, 2), _x(2, 2), train="yes")


def test_rrelu_uses_its_mean_slope_in_eval_mode_and_draws_slopes_in_train_mode() -> None:
    """A random op that draws only in training lowers in eval mode (no key) as torch has it."""
    model, x = torch.nn.RReLU(0.1, 0.3), _x(4, 50)
    evaluate, params = interop.lower(model.eval(), x)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(np.asarray(evaluate(params, jnp.asarray(x.numpy()))), want, 1e-6)
    train, params = interop.lower(model, x, train=True)
    y, _ = train(params, jnp.asarray(x.numpy()), key=KEY)
    y, x = np.asarray(y), x.numpy()
    np.testing.assert_array_equal(y[x > 0], x[x > 0])
    slopes = y[x < 0] / x[x < 0]
    assert 0.1 - 1e-6 <= slopes.min() and slopes.max() <= 0.3 + 1e-6
    assert len(np.unique(slopes.round(6))) > 10  # drawn, not one mean slope

"""``build(spec, runtime="jax", train=True)``: a JAX train step of a torch backbone (issue 22
item 5), checked against torch's own train mode on a tiny timm ResNet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.runtimes.jax.train import NOT_CACHED, NOT_CHECKED
from interop._src.lowering.ops import TABLE

SPEC = specs.TimmSpec(model_name="test_resnet", pretrained=False, model_kwargs={"num_classes": 0})
EXAMPLE = torch.zeros(2, 3, 32, 32)
KEY = jax.random.key(0)


def _x(batch: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def test_a_train_step_matches_torch_train_mode_and_returns_the_new_statistics() -> None:
    step = adapters.build(SPEC, runtime="jax", train=True, example_input=EXAMPLE)
    assert step.info["mode"] == "train" and step.info["cache"] == NOT_CACHED
    assert step.info["train_check"] == "passed" and not step.module.training
    x = _x()
    y, new = jax.jit(step.forward)(step.params, x, key=KEY)
    ref = adapters.build(SPEC)  # the same seed: the same weights
    ref.module.train()
    with torch.no_grad():
        want = ref.module(torch.from_numpy(x))
    np.testing.assert_allclose(np.asarray(y), want.numpy(), rtol=1e-4, atol=1e-4)
    state = ref.module.state_dict()
    assert new and set(new) <= set(step.params)
    for k, v in new.items():
        np.testing.assert_allclose(np.asarray(v), state[k].numpy(), rtol=1e-5, atol=1e-5)
    y2, _ = step.forward({**step.params, **new}, x)  # no random op: the key may be left out
    assert y2.shape == y.shape


def test_train_mode_is_a_jax_runtime_option_and_a_bool() -> None:
    with pytest.raises(
        adapters.BuildError, match=r"^train: train mode is lowered by runtime='jax'"
    ):
        adapters.build(SPEC, train=True)
    with pytest.raises(adapters.BuildError, match=r"^train: must be a bool"):
        adapters.build(SPEC, runtime="jax", train="yes")


def test_a_step_that_draws_is_not_checked_against_torch_and_says_so() -> None:
    spec = specs.TimmSpec(
        model_name="test_resnet",
        pretrained=False,
        model_kwargs={"num_classes": 5, "drop_rate": 0.5},
    )
    step = adapters.build(spec, runtime="jax", train=True, example_input=EXAMPLE)
    assert step.info["train_check"] == NOT_CHECKED
    x = jnp.asarray(_x())
    with pytest.raises(ValueError, match="no key was given"):
        step.forward(step.params, x)
    a, _ = step.forward(step.params, x, key=KEY)
    b, _ = step.forward(step.params, x, key=jax.random.key(1))
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_a_wrong_train_step_fails_the_first_build_check(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "aten._native_batch_norm_legit_functional.default"
    right = TABLE[name]

    def off(*args, **kwargs):
        y, mean, rstd, running_mean, running_var = right(*args, **kwargs)
        return y, mean, rstd, running_mean, running_var * 1.01

    monkeypatch.setitem(TABLE, name, off)
    with pytest.raises(adapters.ParityError, match="differs from torch's train mode on buffer"):
        adapters.build(SPEC, runtime="jax", train=True, example_input=EXAMPLE)

"""A JAX runtime cache hit (``jax/served.py``): ``vmap`` and ``grad`` on the served artifact.

Every result of the hit is compared with the uncached lowering of the same adapter (which JAX
transforms natively) or with torch autograd, on random inputs. Whether ``vmap`` folds into one
batched call or loops is read off the traced program (a loop is a ``scan``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import specs

TINY_VIT = specs.TimmSpec(
    model_name="vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={"img_size": 32, "depth": 1, "embed_dim": 32, "num_heads": 2, "num_classes": 0},
)


def x_image(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def _miss_and_hit(spec, cache, example) -> tuple[adapters.Adapter, adapters.Adapter]:
    torch.manual_seed(0)
    ref = adapters.build(spec)
    miss = adapters.lower_to_jax(ref, example, cache_dir=cache)
    hit = adapters.lower_to_jax(ref, example, cache_dir=cache)
    assert (miss.info["cache"], hit.info["cache"]) == ("miss", "hit")
    return miss, hit


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    """(uncached lowering, cache hit) of a tiny ViT."""
    return _miss_and_hit(TINY_VIT, tmp_path_factory.mktemp("jax"), torch.randn(2, 3, 32, 32))


def _per_example(adapter, params, x):
    """``forward`` vmapped over examples, each a batch of one."""
    return jax.vmap(lambda xi: adapter.forward(params, xi[None])[0])(x)


def _max_rel(a, b) -> float:
    """The largest ``max|a - b| / max|b|`` over the leaves of two pytrees."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(jnp.abs(u - v).max() / jnp.abs(v).max()) for u, v in pairs)


def test_vmap_on_a_hit_folds_into_one_call(vit) -> None:
    miss, hit = vit
    x = x_image(4)
    want = _per_example(miss, miss.params, x)
    got = jax.jit(lambda p, x: _per_example(hit, p, x))(hit.params, x)
    np.testing.assert_allclose(got, want, atol=1e-5)
    program = str(jax.make_jaxpr(lambda x: _per_example(hit, hit.params, x))(x))
    assert "scan" not in program and "reshape" in program  # folded: no loop
    pairs = x.reshape(2, 2, 3, 32, 32)  # a vmapped axis over batches of two
    got = jax.vmap(hit.forward, in_axes=(None, 0))(hit.params, pairs)
    np.testing.assert_allclose(got, np.asarray(want).reshape(2, 2, -1), atol=1e-5)


def test_vmap_over_params_on_a_hit_loops(vit) -> None:
    miss, hit = vit
    x = x_image(3, seed=1)
    scaled = {k: v * 1.5 if v.dtype == jnp.float32 else v for k, v in hit.params.items()}
    ensemble = jax.tree.map(lambda a, b: jnp.stack([a, b]), hit.params, scaled)
    got = jax.vmap(hit.forward, in_axes=(0, None))(ensemble, x)
    for i, params in enumerate((hit.params, scaled)):
        np.testing.assert_allclose(got[i], miss.forward(params, x), atol=1e-5)
    assert "scan" in str(jax.make_jaxpr(jax.vmap(hit.forward, in_axes=(0, None)))(ensemble, x))


@pytest.mark.slow
def test_grad_through_vmap_on_a_hit(vit) -> None:
    """``vmap(grad)`` (per-example gradients) and ``grad(vmap)`` (their sum over examples)
    on a hit, against per-example gradients of the uncached lowering."""
    miss, hit = vit
    x = x_image(3, seed=2)
    w = np.random.default_rng(3).standard_normal((3, 32)).astype(np.float32)

    def loss(adapter):
        return lambda p, xi, wi: jnp.sum(adapter.forward(p, xi[None])[0] * wi)

    def per_example(adapter):
        grad = jax.grad(loss(adapter), argnums=(0, 1))
        return jax.jit(jax.vmap(grad, in_axes=(None, 0, 0)))(adapter.params, x, w)

    want = per_example(miss)
    got = per_example(hit)
    assert got[0]["blocks.0.mlp.fc1.weight"].shape == (3, 128, 32)
    assert _max_rel(got, want) <= 1e-5

    def summed(p, x):
        return jnp.sum(jax.vmap(loss(hit), in_axes=(None, 0, 0))(p, x, w))

    got = jax.jit(jax.grad(summed, argnums=(0, 1)))(hit.params, x)
    assert _max_rel(got, (jax.tree.map(lambda g: g.sum(0), want[0]), want[1])) <= 1e-5


class BatchCentred(torch.nn.Module):
    """Outputs minus their batch mean: row i depends on every row of the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(6, 4)

    def forward(self, x):
        y = self.proj(x)
        return y - y.mean(0, keepdim=True)


def test_a_model_mixing_examples_is_cached_and_loops_under_vmap(tmp_path) -> None:
    spec = specs.ModuleSpec(class_path=f"{__name__}.BatchCentred")
    miss, hit = _miss_and_hit(spec, tmp_path, torch.randn(2, 6))
    xs = np.random.default_rng(4).standard_normal((3, 5, 6)).astype(np.float32)
    want = jax.vmap(miss.forward, in_axes=(None, 0))(miss.params, xs)
    got = jax.vmap(hit.forward, in_axes=(None, 0))(hit.params, xs)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert float(jnp.abs(want.mean(1)).max()) < 1e-6  # centred per vmapped batch, not overall
    assert "scan" in str(jax.make_jaxpr(jax.vmap(hit.forward, in_axes=(None, 0)))(hit.params, xs))


@pytest.mark.slow
def test_resnet_with_pooling_is_cached_and_its_grad_equals_torch(tmp_path) -> None:
    kwargs = {"num_classes": 0, "channels": (8, 8, 16, 16), "stem_width": 8}
    spec = specs.TimmSpec(
        model_name="resnet10t",  # max-pool stem, average-pool shortcuts
        pretrained=False,
        model_kwargs={**kwargs, "zero_init_last": False},
    )
    torch.manual_seed(0)
    ref = adapters.build(spec)
    adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=tmp_path)
    hit = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=tmp_path)
    assert hit.info["cache"] == "hit"
    x = x_image(3, seed=5)
    w = np.random.default_rng(6).standard_normal((3, 16)).astype(np.float32)

    def loss(p, x):
        return jnp.sum(hit.forward(p, x) * w)

    trained = [k for k, v in ref.params.items() if v.dtype.is_floating_point and "running" not in k]
    floats = {k: hit.params[k] for k in trained}
    fixed = {k: v for k, v in hit.params.items() if k not in floats}
    gp, gx = jax.jit(jax.grad(lambda f, x: loss({**fixed, **f}, x), argnums=(0, 1)))(floats, x)
    tp = {k: v.clone().requires_grad_(k in floats) for k, v in ref.params.items()}
    tx = torch.from_numpy(x).requires_grad_(True)
    tloss = (ref.forward(tp, tx) * torch.from_numpy(w)).sum()
    tgrads = torch.autograd.grad(tloss, [tp[k] for k in trained] + [tx])
    for got, want in zip([*(gp[k] for k in trained), gx], tgrads, strict=True):
        want = want.numpy()
        assert np.abs(np.asarray(got) - want).max() <= 1e-4 * np.abs(want).max()

"""``interop.load_params``: params trained in JAX go back into the torch module, strictly.

Real modules (tiny timm ViT and ResNet, plain torch layers), real optax steps under
``jax.jit``; every refusal leaves the module exactly as it was.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import timm
import torch

import interop


def _vit() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2, num_classes=10
    ).eval()


def _snapshot(module: torch.nn.Module) -> dict[str, tuple[torch.Tensor, int, torch.dtype]]:
    """Each state_dict entry's value (a copy), buffer address and dtype."""
    return {
        k: (v.detach().clone(), v.data_ptr(), v.dtype)
        for k, v in module.state_dict(keep_vars=True).items()
    }


def _assert_unchanged(module: torch.nn.Module, before: dict) -> None:
    after = _snapshot(module)
    assert after.keys() == before.keys()
    for k, (value, ptr, dtype) in before.items():
        assert after[k][1] == ptr and after[k][2] == dtype, k
        assert torch.equal(after[k][0], value), k


@pytest.mark.slow
def test_vit_fine_tuned_with_optax_in_jax_matches_in_torch() -> None:
    model = _vit()
    x = torch.randn(4, 3, 32, 32)
    forward, params = interop.lower(model, x)
    labels = jnp.arange(4) % 10
    opt = optax.adam(1e-2)

    @jax.jit
    def step(p, s, xj):
        def loss(p):
            logits = forward(p, xj)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        updates, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, updates), s

    xj = interop.to_jax(x)
    before_jax = np.asarray(jax.jit(forward)(params, xj))
    with torch.no_grad():
        before_torch = model(x).numpy()
    trained, state = params, opt.init(params)
    for _ in range(3):
        trained, state = step(trained, state, xj)
    parameters = dict(model.named_parameters())

    assert interop.load_params(model, trained) is model

    with torch.no_grad():
        after_torch = model(x).numpy()
    after_jax = np.asarray(jax.jit(forward)(trained, xj))
    np.testing.assert_allclose(after_torch, after_jax, rtol=0, atol=1e-5)
    assert np.abs(after_torch - before_torch).max() > 1e-2  # training changed the outputs
    # the module keeps its Parameter objects; the params lower gave keep their old values
    assert all(p is parameters[k] and p.requires_grad for k, p in model.named_parameters())
    np.testing.assert_array_equal(np.asarray(jax.jit(forward)(params, xj)), before_jax)


def test_new_buffers_share_nothing_and_keep_layout() -> None:
    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    old_ptr = conv.weight.data_ptr()
    given = {
        "weight": jnp.full((4, 3, 3, 3), 2.0),
        "bias": np.arange(4, dtype=np.float32)[::-1],  # negative strides, NumPy
    }
    interop.load_params(conv, given)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert conv.weight.data_ptr() != old_ptr
    assert conv.bias.data_ptr() != interop.data_ptr(given["bias"])
    assert torch.equal(conv.weight, torch.full((4, 3, 3, 3), 2.0))
    assert conv.bias.tolist() == [3.0, 2.0, 1.0, 0.0]
    conv.bias.data.add_(1)  # torch writes its own buffers, never the caller's arrays
    assert given["bias"].tolist() == [3.0, 2.0, 1.0, 0.0]


@pytest.mark.slow
def test_bfloat16_params_into_a_bfloat16_module() -> None:
    model = _vit().to(torch.bfloat16)
    x = torch.randn(2, 3, 32, 32, dtype=torch.bfloat16)
    params = interop.to_jax(model.state_dict())  # what interop.lower gives as params
    assert all(v.dtype == jnp.bfloat16 for v in params.values())
    changed = jax.tree.map(lambda v: v * 0.5 + jnp.asarray(0.25, v.dtype), params)
    interop.load_params(model, changed)
    for k, v in model.state_dict().items():
        assert v.dtype == torch.bfloat16, k
        assert torch.equal(v, interop.to_torch(changed[k])), k
    # the same module as torch's own load_state_dict makes it (the bf16 lowering's accuracy
    # is the conformance suite's business)
    reference = _vit().to(torch.bfloat16)
    reference.load_state_dict({k: interop.to_torch(v) for k, v in changed.items()})
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
        assert not torch.equal(model(x), _vit().to(torch.bfloat16)(x))


@pytest.mark.slow
def test_batch_norm_running_statistics_are_loaded() -> None:
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    forward, params = interop.lower(model, x)
    stats = {
        k: v * 1.5 + 0.1 if k.endswith("running_mean") else v * 2.0
        for k, v in params.items()
        if k.endswith(("running_mean", "running_var"))
    }
    counts = {k: v + 7 for k, v in params.items() if k.endswith("num_batches_tracked")}
    assert stats and counts and all(v.dtype == jnp.int32 for v in counts.values())
    changed = {**params, **stats, **counts}

    interop.load_params(model, changed)

    for k in counts:  # JAX's int32 back into torch's int64, values kept
        assert model.get_buffer(k).dtype == torch.int64
        assert model.get_buffer(k).item() == int(counts[k])
    for k in stats:
        np.testing.assert_array_equal(model.get_buffer(k).numpy(), np.asarray(stats[k]))
    with torch.no_grad():
        got = model(x).numpy()
    want = np.asarray(jax.jit(forward)(changed, interop.to_jax(x)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def _bn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()


def _params_of(module: torch.nn.Module) -> dict:
    return {k: jnp.asarray(v.numpy()) + 1 for k, v in module.state_dict().items()}


def _missing(p: dict) -> dict:
    return {k: v for k, v in p.items() if k != "0.bias"}


BAD = {
    "missing key": (_missing, ["1 missing", "0.bias"]),
    "unexpected key": (lambda p: {**p, "2.weight": jnp.ones(3)}, ["1 unexpected", "2.weight"]),
    "wrong shape": (
        lambda p: {**p, "1.running_mean": jnp.ones(5)},
        ["1.running_mean (expected (4,), got (5,))"],
    ),
    "not an array": (lambda p: {**p, "0.weight": [[0.0] * 3] * 4}, ["0.weight", "got list"]),
    "float for an int64 buffer": (
        lambda p: {**p, "1.num_batches_tracked": jnp.asarray(1.0)},
        ["1.num_batches_tracked (the module's is int64, got float32)"],
    ),
    "int for a float parameter": (
        lambda p: {**p, "1.weight": jnp.ones(4, jnp.int32)},
        ["1.weight (the module's is float32, got int32)"],
    ),
    "integer out of range": (
        lambda p: {**p, "1.num_batches_tracked": np.array(2**63, np.uint64)},
        ["1.num_batches_tracked (values in [9223372036854775808, 9223372036854775808] do not"],
    ),
    "traced under jax.jit": (None, ["outside jax.jit"]),
    "every problem at once": (
        lambda p: {
            **_missing(p),
            "extra": jnp.ones(1),
            "1.weight": jnp.ones(3),
            "1.bias": "zeros",
        },
        ["1 missing", "0.bias", "1 unexpected", "extra", "1.weight (expected", "1.bias"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_mismatched_params_raise_one_error_and_write_nothing(case: str) -> None:
    module = _bn()
    edit, words = BAD[case]
    before = _snapshot(module)
    with pytest.raises(ValueError, match="load_params: params do not fit") as err:
        if edit is None:
            jax.jit(lambda p: interop.load_params(module, p) and 0)(_params_of(module))
        else:
            interop.load_params(module, edit(_params_of(module)))
    for word in words:
        assert word in str(err.value)
    assert "Nothing was written" in str(err.value)
    _assert_unchanged(module, before)


@pytest.mark.parametrize(
    ("module", "params", "name"),
    [
        (lambda: _bn().state_dict(), lambda m: {}, "module"),
        (_bn, lambda m: list(_params_of(m).values()), "params"),
        (_bn, lambda m: (lambda p, x: x, _params_of(m)), "params"),
    ],
    ids=["a state_dict as module", "a list as params", "a (forward, params) tuple"],
)
def test_wrong_argument_types_name_the_argument(module, params, name) -> None:
    m = module()
    with pytest.raises(TypeError, match=f"load_params: expected {name} to be"):
        interop.load_params(m, params(m))


def test_key_hints_name_the_likely_mistake() -> None:
    module = _bn()
    p = _params_of(module)
    with pytest.raises(ValueError, match=r"prefix 'inner\.' the others lack"):
        interop.load_params(module, {f"inner.{k}": v for k, v in p.items()})
    with pytest.raises(ValueError, match=r"params\['backbone'\] is itself such a mapping"):
        interop.load_params(module, {"backbone": p, "head": {"w": jnp.ones(2)}})


class _Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(3, 3, bias=False)
        self.out = torch.nn.Linear(3, 3, bias=False)
        self.out.weight = self.embed.weight


def test_tied_weights_load_once_and_refuse_two_values() -> None:
    module = _Tied()
    assert list(module.state_dict()) == ["embed.weight", "out.weight"]
    same = jnp.eye(3)
    interop.load_params(module, {"embed.weight": same, "out.weight": same})
    assert module.out.weight is module.embed.weight
    assert torch.equal(module.embed.weight, torch.eye(3))
    before = _snapshot(module)
    with pytest.raises(
        ValueError, match=r"embed\.weight and out\.weight \(one tensor in the module"
    ):
        interop.load_params(module, {"embed.weight": same, "out.weight": same * 2})
    _assert_unchanged(module, before)


def test_a_meta_module_is_refused_with_the_fix() -> None:
    with torch.device("meta"):
        module = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"meta device: call module\.to_empty first"):
        interop.load_params(module, {"weight": jnp.ones((2, 2)), "bias": jnp.ones(2)})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_module_keeps_its_device() -> None:
    given = _params_of(_bn())  # host JAX arrays, one of them int32
    module = _bn().cuda()
    interop.load_params(module, given)
    for k, v in module.state_dict().items():
        assert v.device.type == "cuda", k
        assert torch.equal(v.cpu(), interop.to_torch(given[k]).to(v.dtype)), k

"""jax_function on real torch and ONNX adapters: values, gradients, vmap, tracing."""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest
import timm
import torch
from torch._subclasses.fake_tensor import FakeTensor

import interop
from adapters._src.adapter import Adapter


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def torch_adapter(module: torch.nn.Module, calls: list | None = None) -> Adapter:
    module = module.eval()

    def forward(params, x):
        if calls is not None and not isinstance(x, FakeTensor):
            calls.append(tuple(x.shape))
        return torch.func.functional_call(module, params, (x,))

    params = {k: v.detach() for k, v in module.state_dict().items()}
    return Adapter(forward=forward, params=params, spec=None, framework="torch", module=module)


MODELS = {
    "linear": (lambda: torch.nn.Linear(6, 4), (5, 6)),
    "mlp": (MLP, (5, 6)),
    "vit": (
        lambda: timm.create_model(
            "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, num_classes=0
        ),
        (2, 3, 32, 32),
    ),
}


@pytest.fixture(scope="module", params=list(MODELS))
def case(request):
    torch.manual_seed(0)
    build, shape = MODELS[request.param]
    calls: list = []
    adapter = torch_adapter(build(), calls)
    x = torch.randn(*shape)
    return request.param, adapter, x, calls


def test_jit_values_equal_torch_and_no_retrace(case) -> None:
    _, adapter, x, calls = case
    f = interop.jax_function(adapter)
    traces = []

    def g(p, x):
        traces.append(1)
        return f(p, x)

    jf = jax.jit(g)
    params = interop.jax_params(adapter)
    with torch.no_grad():
        expected, expected2 = adapter(x).numpy(), adapter(x * 2).numpy()
    calls.clear()
    y1 = jf(params, interop.to_jax(x))
    y2 = jf(params, interop.to_jax(x * 2))
    np.testing.assert_allclose(np.asarray(y1), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y2), expected2, rtol=1e-5, atol=1e-5)
    assert len(traces) == 1  # the second call reuses the compiled program
    assert calls == [tuple(x.shape)] * 2  # shapes came from fake tensors, not a real run
    assert len(f.output_specs) == 1


def test_params_are_shared_with_torch(case) -> None:
    _, adapter, _, _ = case
    params = interop.jax_params(adapter)
    for k, v in adapter.params.items():
        if v.dtype.is_floating_point and v.data_ptr() % 64 == 0:
            assert interop.data_ptr(params[k]) == v.data_ptr(), k


def test_grad_equals_torch_autograd(case) -> None:
    _, adapter, x, _ = case
    f = interop.jax_function(adapter)
    params = interop.jax_params(adapter)
    w = np.random.default_rng(0).standard_normal(adapter(x).shape).astype(np.float32)

    def loss(p, xx):
        return jnp.sum(f(p, xx) * w)

    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, interop.to_jax(x))
    tp = {k: v.clone().requires_grad_(v.dtype.is_floating_point) for k, v in adapter.params.items()}
    tx = x.clone().requires_grad_(True)
    (adapter.forward(tp, tx) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(np.asarray(gx), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    for k, v in tp.items():
        if v.requires_grad:
            np.testing.assert_allclose(np.asarray(gp[k]), v.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_vmap_is_one_batched_call(case) -> None:
    _, adapter, x, calls = case
    f = interop.jax_function(adapter)
    params = interop.jax_params(adapter)
    xs = torch.stack([x, x + 1, x - 1])
    calls.clear()
    y = jax.jit(jax.vmap(f, in_axes=(None, 0)))(params, interop.to_jax(xs))
    assert calls == [(3 * x.shape[0], *x.shape[1:])]  # one torch call, not a loop
    with torch.no_grad():
        expected = torch.stack([adapter(xi) for xi in xs]).numpy()
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_vmap_over_params_loops_correctly() -> None:
    torch.manual_seed(0)
    mods = [torch.nn.Linear(6, 4) for _ in range(2)]
    adapter = torch_adapter(mods[0])
    stacked = {
        k: interop.to_jax(torch.stack([m.state_dict()[k] for m in mods])) for k in adapter.params
    }
    x = torch.randn(5, 6)
    y = jax.vmap(interop.jax_function(adapter), in_axes=(0, None))(stacked, interop.to_jax(x))
    with torch.no_grad():
        expected = np.stack([m(x).numpy() for m in mods])
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_vmap_of_grad() -> None:
    torch.manual_seed(0)
    adapter = torch_adapter(torch.nn.Linear(6, 4))
    f = interop.jax_function(adapter)
    params = interop.jax_params(adapter)
    xs = torch.randn(3, 2, 6)
    g = jax.vmap(jax.grad(lambda p, x: f(p, x).sum(), argnums=1), in_axes=(None, 0))
    out = g(params, interop.to_jax(xs))
    expected = adapter.params["weight"].sum(0).expand(3, 2, 6).numpy()
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def onnx_adapter(tmp_path_factory):
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).eval()
    path = tmp_path_factory.mktemp("onnx") / "linear.onnx"
    with warnings.catch_warnings():
        # dynamo=False is the fast exporter for a one-layer test model; its deprecation
        # notice is about the exporter, not about us.
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript")
        torch.onnx.export(
            lin,
            (torch.randn(2, 6),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def forward(params, x):
        return session.run(None, {"x": np.asarray(x, dtype=np.float32)})[0]

    return Adapter(forward=forward, params={}, spec=None, framework="onnx", module=session), lin


def test_onnx_forward_jit_and_vmap(onnx_adapter) -> None:
    adapter, lin = onnx_adapter
    f = jax.jit(interop.jax_function(adapter))
    x = torch.randn(5, 6)
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(f({}, interop.to_jax(x))), lin(x).numpy(), atol=1e-5)
        xs = torch.randn(3, 5, 6)
        y = jax.vmap(interop.jax_function(adapter), in_axes=(None, 0))({}, interop.to_jax(xs))
        np.testing.assert_allclose(np.asarray(y), lin(xs).numpy(), atol=1e-5)


def test_onnx_grad_is_a_clear_error(onnx_adapter) -> None:
    adapter, _ = onnx_adapter
    f = interop.jax_function(adapter)
    with pytest.raises(TypeError, match="forward-only"):
        jax.grad(lambda x: f({}, x).sum())(jnp.ones((2, 6)))


@pytest.mark.parametrize(
    ("bad", "match"),
    [(object(), "missing"), (Adapter(lambda p, x: x, {}, None, framework="jax"), "framework")],
)
def test_bad_adapters(bad, match) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        interop.jax_function(bad)


def test_flax_head_on_torch_backbone_without_copy() -> None:
    torch.manual_seed(0)
    backbone = torch_adapter(MLP())
    x = torch.randn(4, 6)
    with torch.no_grad():
        feats_t = backbone(x)
    feats = interop.to_jax(feats_t, copy=False)
    assert interop.data_ptr(feats) == feats_t.data_ptr()
    head = nn.Dense(2)
    variables = head.init(jax.random.PRNGKey(0), feats)
    logits = head.apply(variables, feats)
    k = variables["params"]["kernel"]
    b = variables["params"]["bias"]
    np.testing.assert_allclose(
        np.asarray(logits), feats_t.numpy() @ np.asarray(k) + np.asarray(b), rtol=1e-5, atol=1e-5
    )


def test_jax_output_to_torch_head() -> None:
    feats = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
    t = interop.to_torch(feats, copy=False)
    assert t.data_ptr() == interop.data_ptr(feats)
    head = torch.nn.Linear(8, 3)
    with torch.no_grad():
        np.testing.assert_allclose(
            head(t).numpy(),
            np.asarray(feats) @ head.weight.numpy().T + head.bias.numpy(),
            rtol=1e-5,
            atol=1e-5,
        )

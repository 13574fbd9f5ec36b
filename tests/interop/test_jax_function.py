"""jax_function on real torch and ONNX adapters: values, gradients, vmap, tracing, devices.

Every torch case runs through both callbacks: ``host`` (``jax.pure_callback``) and ``buffer``
(``jax.experimental.buffer_callback``, the CUDA path, which runs on the CPU too). The
``meta`` device stands in for a GPU where only placement matters (shape derivation).
"""

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
from adapters._src.torch_module import torch_adapter as build_torch_adapter
from interop._src import torch_call

CALLBACKS = ["host", "buffer"]


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


#: the ViT cases take seconds each: out of the fast lane (-m "not slow"); the small models stay
_CASES = [pytest.param(m, marks=pytest.mark.slow) if m == "vit" else m for m in MODELS]


@pytest.fixture(scope="module", params=_CASES)
def case(request):
    torch.manual_seed(0)
    build, shape = MODELS[request.param]
    calls: list = []
    adapter = torch_adapter(build(), calls)
    x = torch.randn(*shape)
    return request.param, adapter, x, calls


@pytest.fixture(params=CALLBACKS)
def callback(request):
    return request.param


def test_jit_values_equal_torch_and_no_retrace(case, callback) -> None:
    _, adapter, x, calls = case
    f = interop.jax_function(adapter, callback=callback)
    assert f.callback == callback
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


def test_grad_equals_torch_autograd(case, callback) -> None:
    _, adapter, x, _ = case
    f = interop.jax_function(adapter, callback=callback)
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


def test_vmap_is_one_batched_call(case, callback) -> None:
    _, adapter, x, calls = case
    f = interop.jax_function(adapter, callback=callback)
    params = interop.jax_params(adapter)
    xs = torch.stack([x, x + 1, x - 1])
    calls.clear()
    y = jax.jit(jax.vmap(f, in_axes=(None, 0)))(params, interop.to_jax(xs))
    assert calls == [(3 * x.shape[0], *x.shape[1:])]  # one torch call, not a loop
    with torch.no_grad():
        expected = torch.stack([adapter(xi) for xi in xs]).numpy()
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_vmap_over_params_loops_correctly(callback) -> None:
    torch.manual_seed(0)
    mods = [torch.nn.Linear(6, 4) for _ in range(2)]
    adapter = torch_adapter(mods[0])
    stacked = {
        k: interop.to_jax(torch.stack([m.state_dict()[k] for m in mods])) for k in adapter.params
    }
    x = torch.randn(5, 6)
    f = interop.jax_function(adapter, callback=callback)
    y = jax.vmap(f, in_axes=(0, None))(stacked, interop.to_jax(x))
    with torch.no_grad():
        expected = np.stack([m(x).numpy() for m in mods])
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_vmap_of_grad(callback) -> None:
    torch.manual_seed(0)
    adapter = torch_adapter(torch.nn.Linear(6, 4))
    f = interop.jax_function(adapter, callback=callback)
    params = interop.jax_params(adapter)
    xs = torch.randn(3, 2, 6)
    g = jax.vmap(jax.grad(lambda p, x: f(p, x).sum(), argnums=1), in_axes=(None, 0))
    out = g(params, interop.to_jax(xs))
    expected = adapter.params["weight"].sum(0).expand(3, 2, 6).numpy()
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)


def _torch_grads(adapter, x, w):
    """Per-example reference: plain torch autograd of ``sum(forward(params, x) * w)``."""
    tp = {k: v.clone().requires_grad_(v.dtype.is_floating_point) for k, v in adapter.params.items()}
    tx = x.clone().requires_grad_(True)
    (adapter.forward(tp, tx) * w).sum().backward()
    return {k: v.grad for k, v in tp.items() if v.requires_grad}, tx.grad


# torch.func.vmap has no batching rule for SDPA's CPU kernel (ViT) and loops over it inside
# torch, saying so: still one vjp call from us, and the values are what is checked here.
@pytest.mark.filterwarnings(
    "ignore:There is a performance drop because we have not yet implemented the batching rule"
)
# The callbacks differ only in transport, covered on the small models; ViT (the one that
# exercises torch's SDPA batching) runs through the buffer path only, to keep the suite fast.
@pytest.mark.parametrize(
    ("case", "callback"),
    [
        pytest.param(m, c, marks=pytest.mark.slow) if m == "vit" else (m, c)
        for m in MODELS
        for c in CALLBACKS
        if m != "vit" or c == "buffer"
    ],
    indirect=["case"],
)
def test_vmap_of_grad_is_per_example_in_one_torch_vmap(case, callback) -> None:
    _, adapter, x, calls = case
    f = interop.jax_function(adapter, callback=callback)
    params = interop.jax_params(adapter)
    xs = torch.stack([x, x * 0.5, x - 1])
    w = torch.from_numpy(np.random.default_rng(1).standard_normal(adapter(x).shape)).float()

    def loss(p, xx):
        return jnp.sum(f(p, xx) * jnp.asarray(w.numpy()))

    calls.clear()
    gp, gx = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0)))(
        params, interop.to_jax(xs)
    )
    # one vjp under torch.func.vmap (a loop would make 3 calls), plus at most the folded
    # forward, which XLA may drop as dead code since only the gradients are used
    assert calls.count(tuple(x.shape)) == 1 and len(calls) <= 2, calls
    for i, xi in enumerate(xs):
        want_p, want_x = _torch_grads(adapter, xi, w)
        np.testing.assert_allclose(np.asarray(gx[i]), want_x.numpy(), rtol=1e-5, atol=1e-5)
        assert set(want_p) <= set(gp)
        for k, v in want_p.items():
            np.testing.assert_allclose(np.asarray(gp[k][i]), v.numpy(), rtol=1e-5, atol=1e-5)


def test_vmap_of_grad_over_stacked_params(callback) -> None:
    torch.manual_seed(0)
    mods = [torch.nn.Linear(6, 4) for _ in range(3)]
    adapter = torch_adapter(mods[0])
    f = interop.jax_function(adapter, callback=callback)
    stacked = {
        k: interop.to_jax(torch.stack([m.state_dict()[k] for m in mods])) for k in adapter.params
    }
    x = torch.randn(2, 6)
    gp = jax.vmap(jax.grad(lambda p, x: f(p, x).sum()), in_axes=(0, None))(
        stacked, interop.to_jax(x)
    )
    for i, m in enumerate(mods):
        want, _ = _torch_grads(torch_adapter(m), x, torch.ones(2, 4))
        for k, v in want.items():
            np.testing.assert_allclose(np.asarray(gp[k][i]), v.numpy(), rtol=1e-5, atol=1e-5)


class InplaceIntoFresh(torch.nn.Module):
    """Adds into a freshly made tensor in place: fine for torch and vjp, but torch.func.vmap
    cannot write a batched value into an unbatched tensor, so the backward loops."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.zeros(x.shape[0], 4, dtype=x.dtype, device=x.device)
        y.add_(self.lin(x))
        return y


def test_vmap_of_grad_falls_back_to_a_loop_where_torch_cannot_vmap(callback) -> None:
    torch.manual_seed(0)
    calls: list = []
    adapter = torch_adapter(InplaceIntoFresh(), calls)
    f = interop.jax_function(adapter, callback=callback)
    xs = torch.randn(3, 2, 6)
    gx = jax.vmap(jax.grad(lambda p, x: f(p, x).sum(), argnums=1), in_axes=(None, 0))(
        interop.jax_params(adapter), interop.to_jax(xs)
    )
    assert calls.count((2, 6)) >= 3  # the loop ran: one vjp per element after the failed vmap
    for i, xi in enumerate(xs):
        _, want = _torch_grads(adapter, xi, torch.ones(2, 4))
        np.testing.assert_allclose(np.asarray(gx[i]), want.numpy(), rtol=1e-5, atol=1e-5)


def test_buffer_callback_runs_torch_on_xlas_own_buffers() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).eval()
    seen: list = []

    def forward(p, x):
        if not isinstance(x, FakeTensor):
            seen.append((x.data_ptr(), {k: v.data_ptr() for k, v in p.items()}))
        return torch.func.functional_call(lin, p, (x,))

    params = {k: v.detach() for k, v in lin.state_dict().items()}
    adapter = Adapter(forward=forward, params=params, spec=None, framework="torch")
    jp, xj = interop.jax_params(adapter), interop.to_jax(torch.randn(5, 6), copy=True)
    jax.block_until_ready(jax.jit(interop.jax_function(adapter, callback="buffer"))(jp, xj))
    ((x_ptr, p_ptrs),) = seen
    assert x_ptr == interop.data_ptr(xj)
    assert p_ptrs == {k: interop.data_ptr(v) for k, v in jp.items()}


def test_buffer_callback_names_a_forward_whose_shape_differs_from_its_fake_run() -> None:
    def forward(p, x):  # fake tensors see (n, 6), real inputs give (n - 1, 6)
        return x if isinstance(x, FakeTensor) else x[1:]

    adapter = Adapter(forward=forward, params={}, spec=None, framework="torch")
    f = jax.jit(interop.jax_function(adapter, callback="buffer"))
    with pytest.raises(Exception, match="fake-tensor run gave"):
        jax.block_until_ready(f({}, jnp.ones((3, 6))))


def _meta_adapter():
    with torch.device("meta"):
        return build_torch_adapter(MLP(), None)


def test_output_shapes_come_from_fake_tensors_on_the_adapters_device() -> None:
    adapter = _meta_adapter()  # meta stands in for CUDA: forward checks its input's device
    assert adapter.info["device"] == "meta"
    f = interop.jax_function(adapter)
    params = {
        k: jax.ShapeDtypeStruct(tuple(v.shape), jnp.float32) for k, v in adapter.params.items()
    }
    out = jax.eval_shape(f, params, jax.ShapeDtypeStruct((5, 6), jnp.float32))
    assert (out.shape, out.dtype) == ((5, 3), jnp.float32)
    with pytest.raises(ValueError, match="expected 'meta'"):  # the check that used to trip
        adapter.forward(dict(adapter.params), torch.empty(5, 6))


def _tensor(device: str) -> torch.Tensor:
    return torch.empty(2, device=device)


@pytest.mark.parametrize(
    ("params", "info", "want"),
    [
        ({"w": _tensor("cpu")}, {}, "cpu"),
        ({"w": _tensor("meta"), "b": _tensor("meta")}, {}, "meta"),
        ({"w": _tensor("meta")}, {"device": "cpu"}, "meta"),  # the params win
        ({}, {"device": "meta"}, "meta"),
        ({}, {}, "cpu"),
        ({"w": _tensor("cpu"), "b": _tensor("meta")}, {"device": "meta"}, "meta"),
    ],
    ids=["cpu", "meta", "params-over-info", "info-only", "nothing", "spread-with-info"],
)
def test_adapter_device(params, info, want) -> None:
    adapter = Adapter(lambda p, x: x, params, None, framework="torch", info=info)
    assert torch_call.adapter_device(adapter) == torch.device(want)


def test_adapter_device_spread_without_info_is_a_clear_error() -> None:
    adapter = Adapter(
        lambda p, x: x, {"w": _tensor("cpu"), "b": _tensor("meta")}, None, framework="torch"
    )
    with pytest.raises(ValueError, match=r"several devices \(cpu, meta\).*info\['device'\]"):
        interop.jax_function(adapter)


def test_fake_inputs_keep_each_params_device() -> None:
    adapter = Adapter(
        lambda p, x: x, {"w": _tensor("cpu"), "b": _tensor("meta")}, None, framework="torch"
    )
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        fp, fx = torch_call.fake_inputs(
            adapter,
            {"w": jnp.ones(2), "b": jnp.ones(2), "extra": jnp.ones(3)},
            jnp.ones((4, 2)),
            torch.device("meta"),
            lambda d: torch.float32,
        )
    assert {k: v.device.type for k, v in fp.items()} == {"w": "cpu", "b": "meta", "extra": "meta"}
    assert (fx.device.type, tuple(fx.shape)) == ("meta", (4, 2))


def test_mover_is_free_on_the_cpu_and_moves_elsewhere() -> None:
    t = torch.randn(3)
    assert torch_call.mover(torch.device("cpu"))(t) is t
    moved = torch_call.mover(torch.device("meta"))(t)
    assert moved.device.type == "meta" and moved.shape == t.shape
    already = torch.empty(3, device="meta")
    assert torch_call.mover(torch.device("meta"))(already) is already


@pytest.mark.parametrize(
    ("framework", "callback", "match"),
    [
        ("torch", "gpu", r"callback must be one of \('auto', 'host', 'buffer'\), got 'gpu'"),
        ("onnx", "buffer", "runs on 'onnx'"),
    ],
)
def test_bad_callback(framework, callback, match) -> None:
    adapter = Adapter(lambda p, x: x, {}, None, framework=framework)
    with pytest.raises(ValueError, match=match):
        interop.jax_function(adapter, callback=callback)


def test_auto_picks_buffer_for_a_cpu_adapter_under_cpu_jax_and_eager_calls_agree() -> None:
    torch.manual_seed(0)
    adapter = torch_adapter(torch.nn.Linear(6, 4))
    f = interop.jax_function(adapter)
    assert jax.default_backend() == "cpu"
    assert f.callback == "buffer"  # both on the CPU: torch runs on XLA's own buffers
    x = torch.randn(2, 6)
    with torch.no_grad():
        want = adapter(x).numpy()
    for _ in range(2):  # eager, not jitted: the second call reuses the first's program
        np.testing.assert_allclose(
            np.asarray(f(interop.jax_params(adapter), interop.to_jax(x))),
            want,
            rtol=1e-5,
            atol=1e-5,
        )


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


@pytest.mark.slow
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


WRONG_RANK_VIT = {
    "img_size": 32,
    "patch_size": 8,
    "embed_dim": 16,
    "depth": 1,
    "num_heads": 2,
    "num_classes": 0,
}


def test_wrong_rank_names_x_and_the_expected_shape() -> None:
    import adapters
    import specs

    adapter = adapters.build(
        specs.TimmSpec("vit_tiny_patch16_224", pretrained=False, model_kwargs=WRONG_RANK_VIT)
    )
    f = interop.jax_function(adapter)
    x = jnp.ones((3, 32, 32), dtype=jnp.float32)
    with pytest.raises(
        ValueError, match=r"^jax_function: x has shape \(3, 32, 32\) \(rank 3\)"
    ) as info:
        f(interop.jax_params(adapter), x)
    message = str(info.value)
    assert "rank-4 input shaped like (batch, 3, " in message and "x[None]" in message


def test_forward_failure_on_x_without_a_known_input_shape_names_x() -> None:
    import adapters
    import specs

    adapter = adapters.build(
        specs.ModuleSpec(
            class_path="timm.models.vision_transformer.VisionTransformer", init_args=WRONG_RANK_VIT
        )
    )
    assert adapter.info.get("input_shape") is None
    f = interop.jax_function(adapter)
    with pytest.raises(
        ValueError, match=r"^jax_function: the backbone's forward fails on x of shape \(3, 32, 32\)"
    ):
        f(interop.jax_params(adapter), jnp.ones((3, 32, 32), dtype=jnp.float32))

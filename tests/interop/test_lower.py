"""``interop.lower`` end to end: tiny real architectures against torch eager, JAX transforms,
memory sharing, dtypes, structure, and the one clear error for what cannot be lowered."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import timm
import torch
import transformers

import interop

ATOL = 1e-4


def _tiny(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, **kwargs).eval()


def _hf(tmp_path, config_cls, model_cls, **cfg) -> torch.nn.Module:
    torch.manual_seed(0)
    model_cls(config_cls(**cfg)).save_pretrained(tmp_path)
    return model_cls.from_pretrained(tmp_path).eval()


# name -> (factory(tmp_path), input size at lowering, input size at call)
ARCHS = {
    "timm-vit": (
        lambda _: _tiny("vit_tiny_patch16_224", img_size=32, depth=2, drop_rate=0.5),
        32,
        32,
    ),
    "timm-dinov2-reg4-dynamic-size": (
        lambda _: _tiny(
            "vit_small_patch14_reg4_dinov2", img_size=28, depth=1, dynamic_img_size=True
        ),
        42,  # a 3x3 grid from a 2x2 pos-embed: antialiased bicubic resampling in the graph
        42,
    ),
    "timm-resnet": (lambda _: _tiny("resnet18"), 32, 32),
    "timm-swin": (
        lambda _: _tiny(
            "swin_tiny_patch4_window7_224",
            img_size=56,
            depths=(1, 1),
            embed_dim=16,
            num_heads=(1, 2),
        ),
        56,
        56,
    ),
    "hf-vit": (
        lambda p: _hf(
            p,
            transformers.ViTConfig,
            transformers.ViTModel,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        ),
        32,
        32,
    ),
    "hf-dinov2": (
        lambda p: _hf(
            p,
            transformers.Dinov2Config,
            transformers.Dinov2Model,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            mlp_ratio=2,
            image_size=28,
            patch_size=14,
        ),
        42,
        42,
    ),
}
SLOW_ARCHS = {
    "timm-efficientnet-lite0": (lambda _: _tiny("tf_efficientnet_lite0"), 32, 32),
    "timm-convnext": (lambda _: _tiny("convnext_atto"), 32, 32),
}


def _torch_out(out):
    if isinstance(out, transformers.utils.ModelOutput):
        return {k: v for k, v in out.items() if v is not None}
    return out


def _check_close(got, want) -> float:
    """Max abs difference over matching structures (dict keys / tuple items / arrays)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (list(got), list(want))
        return max(_check_close(got[k], want[k]) for k in want)
    if isinstance(want, (tuple, list)):
        return max(_check_close(g, w) for g, w in zip(got, want, strict=True))
    assert got.shape == tuple(want.shape) and got.dtype == jnp.float32
    return float(np.abs(np.asarray(got) - want.numpy()).max())


def _run_arch(name, spec, tmp_path) -> None:
    factory, size_lower, size_call = spec
    model = factory(tmp_path)
    forward, params = interop.lower(model, torch.randn(2, 3, size_lower, size_lower))
    x = torch.randn(3, 3, size_call, size_call)  # another batch size than the example
    with torch.no_grad():
        want = _torch_out(model(x))
    got = jax.jit(forward)(params, interop.to_jax(x))
    diff = _check_close(got, want)
    assert diff <= ATOL, f"{name}: max abs diff {diff}"


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_architecture_matches_torch(name: str, tmp_path) -> None:
    _run_arch(name, ARCHS[name], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_ARCHS))
def test_architecture_matches_torch_slow(name: str, tmp_path) -> None:
    _run_arch(name, SLOW_ARCHS[name], tmp_path)


@pytest.fixture(scope="module")
def vit():
    model = _tiny("vit_tiny_patch16_224", img_size=16, patch_size=8, depth=1, num_classes=5)
    forward, params = interop.lower(model, torch.randn(2, 3, 16, 16))
    return model, forward, params


def test_params_share_the_torch_memory(vit) -> None:
    model, _, params = vit
    state = model.state_dict()
    assert list(params) == list(state)
    for k, v in state.items():
        assert interop.data_ptr(params[k]) == v.data_ptr(), k


def test_attention_stays_one_device_independent_op() -> None:
    # decomposed, SDPA becomes a kernel chosen by the example's device (the CPU flash op here,
    # _scaled_dot_product_efficient_attention on CUDA), and a module on CUDA would not lower
    from interop._src.lowering.export import export
    from interop._src.lowering.ops import op_name

    model = _tiny("vit_tiny_patch16_224", img_size=16, patch_size=8, depth=1, num_classes=0)
    ep = export(model, (torch.randn(2, 3, 16, 16),), True)
    names = [op_name(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    attention = [n for n in names if "attention" in n]
    assert attention == ["aten.scaled_dot_product_attention.default"], attention


def _on_fake_cuda(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple:
    """``module`` with fake CUDA params and a fake CUDA input: torch.export traces with fake
    tensors anyway, so the graph is the one a real GPU gives, without needing a GPU."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode()
    with mode:
        for sub in module.modules():
            for k, p in [(k, p) for k, p in sub._parameters.items() if p is not None]:
                fake = mode.from_tensor(p).to("cuda")
                sub._parameters[k] = torch.nn.Parameter(fake, requires_grad=p.requires_grad)
            for k, b in [(k, b) for k, b in sub._buffers.items() if b is not None]:
                sub._buffers[k] = mode.from_tensor(b).to("cuda")
        return mode, mode.from_tensor(torch.empty(shape)).to("cuda")


@pytest.mark.skipif(not torch.backends.cuda.is_built(), reason="needs a CUDA build of torch")
@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [("resnet18", {}, 64), ("vit_tiny_patch16_224", {"img_size": 32, "depth": 1}, 32)],
)
def test_a_module_on_cuda_exports_to_table_ops(name: str, kwargs: dict, size: int) -> None:
    # an unbounded batch broke ResNet's export on CUDA (a 65535 guard); attention must not
    # become a CUDA-only kernel
    from interop._src.lowering.check import check
    from interop._src.lowering.export import export

    model = _tiny(name, num_classes=0, **kwargs)
    mode, x = _on_fake_cuda(model, (2, 3, size, size))
    with mode:
        ep = export(model, (x,), True)
    check(ep, name)  # raises LoweringError naming any op outside the table


def test_jit_grad_matches_torch_autograd(vit) -> None:
    model, forward, params = vit
    x = torch.randn(2, 3, 16, 16)
    w = torch.randn(2, 5)

    def loss(p, xj):
        return jnp.sum(forward(p, xj) * jnp.asarray(w.numpy()))

    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, interop.to_jax(x))
    named = dict(model.named_parameters())
    xt = x.clone().requires_grad_(True)
    (model(xt) * w).sum().backward()
    for k, p in named.items():
        ref = p.grad.numpy()
        rel = np.linalg.norm(np.asarray(gp[k]) - ref) / max(np.linalg.norm(ref), 1e-12)
        assert rel <= 1e-4, (k, rel)
    ref = xt.grad.numpy()
    assert np.linalg.norm(np.asarray(gx) - ref) / np.linalg.norm(ref) <= 1e-4
    model.zero_grad(set_to_none=True)


def test_vmap_over_examples(vit) -> None:
    _, forward, params = vit
    x = jax.random.normal(jax.random.key(0), (4, 3, 16, 16))
    per_example = jax.jit(jax.vmap(lambda xi: forward(params, xi[None])[0]))(x)
    np.testing.assert_allclose(per_example, jax.jit(forward)(params, x), atol=1e-5)


def test_backbone_and_flax_head_in_one_jit(vit) -> None:
    _, forward, params = vit
    head = nn.Dense(3)
    x = jax.random.normal(jax.random.key(1), (2, 3, 16, 16))
    hp = head.init(jax.random.key(2), jnp.zeros((1, 5)))
    step = jax.jit(lambda p, h, xx: head.apply(h, forward(p, xx)))
    want = head.apply(hp, jax.jit(forward)(params, x))
    np.testing.assert_allclose(step(params, hp, x), want, atol=1e-5)
    # one XLA program: the backbone's ops and the head's dot are in the same module
    hlo = step.lower(params, hp, x).as_text()
    assert hlo.count("func.func public @main") == 1 and "dot_general" in hlo


def test_jax_export_round_trip(vit) -> None:
    _, forward, params = vit
    x = jax.random.normal(jax.random.key(3), (2, 3, 16, 16))
    exported = jax.export.export(jax.jit(forward))(params, x)
    restored = jax.export.deserialize(exported.serialize())
    np.testing.assert_allclose(restored.call(params, x), exported.call(params, x), atol=1e-6)
    np.testing.assert_allclose(restored.call(params, x), jax.jit(forward)(params, x), atol=1e-6)


def test_jax_export_with_a_symbolic_batch() -> None:
    """The ViT's ``x[:, 1:]`` slices (``end=INT64_MAX`` in ATen) export on a symbolic batch."""
    model = _tiny("vit_tiny_patch16_224", img_size=32, depth=1, embed_dim=32, num_heads=2)
    forward, params = interop.lower(model, torch.randn(2, 3, 32, 32))
    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, 3, 32, 32), jnp.float32)
    exported = jax.export.export(jax.jit(forward))(params, spec)
    restored = jax.export.deserialize(exported.serialize())
    for batch in (1, 5):
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(restored.call(params, interop.to_jax(x)), want, atol=ATOL)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_low_precision_dtypes(dtype: torch.dtype) -> None:
    model = _tiny("vit_tiny_patch16_224", img_size=16, patch_size=8, depth=1).to(dtype)
    x = torch.randn(2, 3, 16, 16).to(dtype)
    forward, params = interop.lower(model, x)
    got = jax.jit(forward)(params, interop.to_jax(x))
    with torch.no_grad():
        want = model(x)
    assert got.dtype == jnp.dtype(str(dtype).removeprefix("torch."))
    got32, want32 = np.asarray(got, np.float32), want.float().numpy()
    # a handful of roundings of 8 (bf16) or 11 (f16) bit mantissas apart
    tol = 0.05 if dtype == torch.bfloat16 else 0.01
    assert np.abs(got32 - want32).max() <= tol * np.abs(want32).max()


class _TwoInOut(torch.nn.Module):
    """Two inputs, a nested dict/tuple output, a lifted constant, a non-persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.register_buffer("shift", torch.arange(3.0), persistent=False)
        self.bn.running_mean.normal_()
        self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x, y):
        h = self.bn(self.lin(x)) + self.shift + torch.tensor([1.0, -1.0, 0.5])
        mask = (y > 0) & ~(y > 2)  # boolean ops, as attention masks use them
        return {"h": h, "pair": (torch.dropout(h, 0.5, self.training), mask.sum(-1))}


def test_several_inputs_structure_constants_and_eval_mode() -> None:
    torch.manual_seed(0)
    model = _TwoInOut().train()
    x, y = torch.randn(2, 4), torch.randn(2, 5) * 3
    forward, params = interop.lower(model, (x, y))
    assert model.training, "the module's mode is restored after lowering"
    assert set(params) == set(model.state_dict()) and "shift" not in params
    xb, yb = torch.randn(5, 4), torch.randn(5, 5) * 3
    got = forward(params, (interop.to_jax(xb), interop.to_jax(yb)))
    with torch.no_grad():
        want = model.eval()(xb, yb)
    assert set(got) == {"h", "pair"} and isinstance(got["pair"], tuple)
    np.testing.assert_allclose(got["h"], want["h"].numpy(), atol=1e-6)
    np.testing.assert_allclose(got["pair"][0], want["pair"][0].numpy(), atol=1e-6)
    np.testing.assert_array_equal(got["pair"][1], want["pair"][1].numpy())


class _Pair(torch.nn.Module):
    """Two tensor inputs, positional: ``forward(x, y)``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x, y):
        return self.lin(x) * y[:, :3]


class _StarArgs(_Pair):
    def forward(self, *args):
        return self.lin(args[0]) + args[1][:, 1:4]


class _DictInput(_Pair):
    def forward(self, batch):
        return self.lin(batch["x"]) - batch["y"][:, -3:]


@pytest.mark.parametrize("cls", [_Pair, _StarArgs, _DictInput], ids=lambda c: c.__name__)
def test_dynamic_batch_matches_any_signature(cls) -> None:
    """``dynamic_shapes`` follow the signature: two inputs, ``*args``, one dict."""
    torch.manual_seed(0)
    model = cls().eval()

    def inputs(batch: int):
        x, y = torch.randn(batch, 4), torch.randn(batch, 5)
        return ({"x": x, "y": y},) if cls is _DictInput else (x, y)

    example = inputs(1)  # a size-1 batch: exported on a doubled copy, still dynamic
    forward, params = interop.lower(model, example[0] if cls is _DictInput else example)
    for batch in (2, 7):
        args = inputs(batch)
        with torch.no_grad():
            want = model(*args).numpy()
        jargs = jax.tree.map(interop.to_jax, args)
        got = jax.jit(forward)(params, jargs[0] if cls is _DictInput else jargs)
        np.testing.assert_allclose(got, want, atol=1e-6)


@torch.library.custom_op("lowering_test::rare", mutates_args=())
def _rare(x: torch.Tensor) -> torch.Tensor:
    """An op no lowering table has: a torch custom op."""
    return x * 0.5


@_rare.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class _Unusual(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Sequential(torch.nn.Linear(4, 4), _Rare())
        self.b = _CustomOp()

    def forward(self, x):
        return self.b(self.a(x)) + _rare(x.tanh())


class _Rare(torch.nn.Module):
    def forward(self, x):
        return _rare(torch.tanh(x))


@torch.library.custom_op("lowering_test::unlowered", mutates_args=())  # no "adapters" in it
def _unlowered(x: torch.Tensor) -> torch.Tensor:
    return x.cumprod(-1)


@_unlowered.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class _CustomOp(torch.nn.Module):
    def forward(self, x):
        return _unlowered(x)  # a custom op: outside every lowering table


def test_missing_ops_are_all_named_with_their_submodules() -> None:
    with pytest.raises(interop.LoweringError) as info:
        interop.lower(_Unusual(), torch.randn(2, 4))
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "2 op(s) are not in the lowering table" in msg
    assert "lowering_test.rare.default, used in" in msg and "a.1 (_Rare)" in msg
    assert "<root> (_Unusual)" in msg  # the second use, in the root's own forward
    assert "lowering_test.unlowered.default, used in b (_CustomOp)" in msg
    assert "interop/_src/lowering/ops/" in msg and "interop.lowering.op" in msg  # how to add one
    # what to run instead is the runtime's advice (adapters), not the lowering's
    assert "runtime=" not in msg and "adapters" not in msg


class _WritesWeightData(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        self.w.data.add_(1)  # torch.export's own message is about fake tensors and constants
        return x * self.w


class _CountsCalls(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(4))

    def forward(self, x):
        self.calls.add_(1)
        return x + self.calls


@pytest.mark.parametrize(
    ("model", "name", "state"),
    [
        (_WritesWeightData(), "_WritesWeightData", "w"),
        (torch.nn.Sequential(torch.nn.Linear(4, 4), _WritesWeightData()), "Sequential", "1.w"),
        (_CountsCalls(), "_CountsCalls", "calls"),
    ],
    ids=["weight-data", "nested-weight-data", "buffer"],
)
def test_a_forward_that_mutates_state_says_so_first(model, name: str, state: str) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(interop.LoweringError) as info:
        interop.lower(model, torch.randn(2, 4))
    msg = str(info.value)
    assert msg.startswith(f"cannot lower {name} to JAX: its forward mutates state ({state}"), msg
    if "torch.export" in msg:  # torch's reason, after ours
        assert msg.index("mutates state") < msg.index("torch.export")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"lower wrote {k}"


class _DataDependent(torch.nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


def test_unexportable_module_raises_lowering_error() -> None:
    with pytest.raises(interop.LoweringError, match=r"torch\.export\.export failed") as info:
        interop.lower(_DataDependent(), torch.randn(2, 4))
    assert "mutates state" not in str(info.value) and "adapters" not in str(info.value)


class _FixedBatch(torch.nn.Module):
    def forward(self, x):
        return x.reshape(2, -1)


def test_fixed_batch_module_names_the_static_option() -> None:
    with pytest.raises(interop.LoweringError, match="dynamic_batch=False"):
        interop.lower(_FixedBatch(), torch.randn(2, 4))
    forward, params = interop.lower(_FixedBatch(), torch.randn(2, 4), dynamic_batch=False)
    assert forward(params, jnp.ones((2, 4))).shape == (2, 4)


def test_bad_arguments_get_clear_errors(vit) -> None:
    _, forward, params = vit
    with pytest.raises(TypeError, match=r"expected module to be a torch\.nn\.Module"):
        interop.lower(lambda x: x, torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"shape\[1:\] \(3, 24, 24\).*expected \(3, 16, 16\)"):
        forward(params, jnp.zeros((2, 3, 24, 24)))
    with pytest.raises(ValueError, match="structure"):
        forward(params, (jnp.zeros((2, 3, 16, 16)), jnp.zeros((2, 3, 16, 16))))


def test_static_batch() -> None:
    model = torch.nn.Linear(4, 2)
    forward, params = interop.lower(model, torch.randn(3, 4), dynamic_batch=False)
    x = torch.randn(3, 4)
    np.testing.assert_allclose(
        forward(params, interop.to_jax(x)), model(x).detach().numpy(), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"shape \(5, 4\)"):
        forward(params, jnp.zeros((5, 4)))

"""``runtime="jax"``: a torch adapter lowered into a pure JAX function (issue 12 items 2, 5, 6).

Every numerical claim is checked against the torch adapter on random inputs; the zero-copy
claim by buffer pointers; the cache by counting ``torch.export.export`` calls (our call site).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import yaml

import adapters
import interop
import specs
from adapters._src.runtimes.cache_entry import CacheWarning
from adapters._src.runtimes.jax.cache import jax_cache_key
from adapters._src.runtimes.jax.device import exact_float32, export_platform

TINY_VIT = {"img_size": 32, "depth": 2, "num_classes": 0}
SPEC = specs.TimmSpec(
    model_name="vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={**TINY_VIT, "global_pool": ""},  # (B, T, D) tokens: the transform picks CLS
    transforms=(specs.ClsToken(),),
)


def x_image(batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(torch adapter, its JAX lowering, the cache dir): one lowering for the module."""
    torch.manual_seed(0)
    ref = adapters.build(SPEC)
    cache = tmp_path_factory.mktemp("jax-cache")
    low = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=cache)
    return ref, low, cache


def test_output_equals_torch_under_jit(pair) -> None:
    ref, low, _ = pair
    assert low.framework == "jax" and low.info["runtime"] == "jax"
    assert low.info["device"] == "cpu" and low.info["cache"] == "miss"
    assert low.info["preprocess"] == ref.info["preprocess"]
    assert low.info["input_shape"] == ref.info["input_shape"]
    x = x_image(batch=5)
    got = jax.jit(low.forward)(low.params, x)
    assert isinstance(got, jax.Array) and got.shape == (5, 192)
    np.testing.assert_allclose(got, ref(torch.from_numpy(x)).numpy(), atol=1e-4, rtol=0)


def test_params_share_the_torch_memory(pair) -> None:
    ref, low, _ = pair
    assert list(low.params) == list(ref.params)
    for name, t in ref.params.items():
        if t.dtype.is_floating_point:
            assert low.params[name].unsafe_buffer_pointer() == t.data_ptr(), name


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_grad_matches_torch_autograd(pair) -> None:
    ref, low, _ = pair
    x = x_image()
    w = np.random.default_rng(1).standard_normal((3, 192)).astype(np.float32)

    def loss(params, x):
        return jnp.sum(jnp.tanh(low.forward(params, x)) * w)

    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(low.params, x)
    tp = {k: v.clone().requires_grad_(v.dtype.is_floating_point) for k, v in ref.params.items()}
    tx = torch.from_numpy(x).requires_grad_(True)
    tloss = (torch.tanh(ref.forward(tp, tx)) * torch.from_numpy(w)).sum()
    names = [k for k, v in tp.items() if v.requires_grad]
    grads = torch.autograd.grad(tloss, [tp[k] for k in names] + [tx])
    assert _rel(gx, grads[-1]) <= 1e-4
    for name, g in zip(names, grads[:-1], strict=True):
        assert _rel(gp[name], g) <= 1e-4, name


def test_vmap_over_examples(pair) -> None:
    ref, low, _ = pair
    x = x_image(batch=4)
    per_example = jax.vmap(lambda xi: low.forward(low.params, xi[None])[0])(x)
    np.testing.assert_allclose(per_example, ref(torch.from_numpy(x)).numpy(), atol=1e-4)


class Head(nn.Module):
    @nn.compact
    def __call__(self, h):
        return nn.Dense(3)(h)


def test_backbone_and_flax_head_in_one_jit_and_an_optax_step(pair) -> None:
    _, low, _ = pair
    x, y = x_image(batch=6), jnp.array([0, 1, 2, 0, 1, 2])
    head = Head()
    hp = head.init(jax.random.PRNGKey(0), jnp.zeros((1, 192)))
    params = {"backbone": low.params, "head": hp}
    opt = optax.sgd(1e-3)
    state = opt.init(params)

    def loss(p, x, y):
        logits = head.apply(p["head"], low.forward(p["backbone"], x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(p, s, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, value

    text = jax.jit(lambda p, x: head.apply(p["head"], low.forward(p["backbone"], x)))
    assert "dot_general" in text.lower(params, x).as_text()  # one program: backbone and head
    new, _, before = step(params, state, x, y)
    assert float(loss(new, x, y)) < float(before)


def test_jax_export_round_trip(pair) -> None:
    _, low, _ = pair
    x = x_image(batch=2)
    exported = jax.export.export(jax.jit(low.forward))(low.params, x)
    restored = jax.export.deserialize(exported.serialize())
    np.testing.assert_allclose(restored.call(low.params, x), low.forward(low.params, x), atol=1e-5)


def test_cache_hit_skips_torch_export(pair, monkeypatch) -> None:
    ref, low, cache = pair
    calls = []
    real = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: calls.append(1) or real(*a, **k))
    hit = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=cache)
    assert calls == [] and hit.info["cache"] == "hit"
    assert hit.info["cache_key"] == low.info["cache_key"]
    x = x_image(batch=7, seed=3)  # another batch size: the artifact's batch is symbolic
    want = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(jax.jit(hit.forward)(hit.params, x), want, atol=1e-4)
    # the served artifact exports again (StableHLO of StableHLO) and gives the same output
    again = jax.export.deserialize(
        jax.export.export(jax.jit(hit.forward))(hit.params, x).serialize()
    )
    np.testing.assert_allclose(again.call(hit.params, x), want, atol=1e-4)


def test_the_first_build_check_is_recorded_and_read_back_on_a_hit(pair) -> None:
    # runtime="auto" shows each runtime's check; the JAX runtime ran its check but kept
    # no record of it, on a miss or a hit
    ref, low, cache = pair
    assert low.info["cache"] == "miss" and low.info["parity"]["max_abs"] <= 1e-4
    hit = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=cache)
    assert hit.info["cache"] == "hit"
    assert hit.info["parity"] == json.loads(json.dumps(low.info["parity"]))  # as JSON keeps it


@pytest.mark.slow
def test_cache_hit_grad_matches_the_lowering(pair) -> None:
    ref, low, cache = pair
    hit = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32), cache_dir=cache)
    assert hit.info["cache"] == "hit"
    x = x_image(batch=3, seed=3)
    # a random projection: the plain sum of layer-normed features has a zero gradient
    w = np.random.default_rng(2).standard_normal((3, 192)).astype(np.float32)

    def loss(forward, params, x):
        return jnp.sum(forward(params, x) * w)

    g_hit = jax.grad(loss, argnums=(1, 2))(hit.forward, hit.params, x)
    g_miss = jax.grad(loss, argnums=(1, 2))(low.forward, low.params, x)
    assert _rel(g_hit[1], g_miss[1]) <= 1e-4
    for name in ("patch_embed.proj.weight", "blocks.1.mlp.fc2.weight", "cls_token"):
        assert _rel(g_hit[0][name], g_miss[0][name]) <= 1e-4, name


def test_corrupt_cache_entry_is_rebuilt(pair, monkeypatch) -> None:
    ref, low, cache = pair
    artifact = cache / low.info["cache_key"][:32] / "forward.jax"
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")
    with pytest.warns(CacheWarning, match="forward.jax does not match"):
        again = adapters.lower_to_jax(
            ref, torch.randn(2, 3, 32, 32), cache_dir=cache, use_cache=True
        )
    assert again.info["cache"] == "miss"
    assert (
        adapters.lower_to_jax(ref, torch.zeros(2, 3, 32, 32), cache_dir=cache).info["cache"]
        == "hit"
    )


class ProjectsThenHalves(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x):
        return _halve(self.proj(x))  # a custom op: outside every lowering table


def test_op_outside_the_table_is_a_build_error(tmp_path) -> None:
    backbone = adapters.build(specs.ModuleSpec(class_path=f"{__name__}.ProjectsThenHalves"))
    with pytest.raises(adapters.BuildError, match="runtime") as info:
        adapters.lower_to_jax(backbone, torch.randn(2, 8), cache_dir=tmp_path)
    message = str(info.value)
    name = "fm_adapters_test.jax_runtime_halve"
    assert name in message and "proj" not in message.split(name)[0]
    assert "runtime='torch'" in message and "interop.jax_function" in message
    assert info.value.field == "runtime"


@torch.library.custom_op("fm_adapters_test::jax_runtime_halve", mutates_args=())
def _halve(x: torch.Tensor) -> torch.Tensor:
    return x / 2


@_halve.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class HalvesByCustomOp(torch.nn.Module):
    """Uses an op no lowering table will have: a torch custom op of this test module."""

    def forward(self, x):
        return _halve(x)


class BranchesOnData(torch.nn.Module):
    """torch.export cannot capture it: the branch depends on the values."""

    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


@pytest.mark.parametrize("cls", [HalvesByCustomOp, BranchesOnData])
def test_a_failed_jax_build_gives_the_alternatives_once(cls) -> None:
    spec = specs.ModuleSpec(class_path=f"{__name__}.{cls.__name__}")
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(spec, runtime="jax", example_input=torch.randn(2, 8))
    message = str(info.value)
    assert info.value.field == "runtime" and f"cannot lower {cls.__name__}" in message
    assert message.count("runtime='torch'") == 1, message
    assert message.count("interop.jax_function") == 1, message


def test_non_torch_adapter_is_a_type_error(pair, tmp_path) -> None:
    _, low, _ = pair
    with pytest.raises(TypeError, match=r"expected a torch-family adapters\.Adapter, got 'jax'"):
        adapters.lower_to_jax(low, cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("example", "error", "says"),
    [
        ("nope", TypeError, r"example_input: expected a torch\.Tensor, jax\.Array or numpy"),
        (torch.tensor(1.0), ValueError, r"is a scalar.*dynamic_batch=False in adapters\.export"),
    ],
    ids=["not-an-array", "scalar"],
)
def test_a_bad_example_input_names_the_argument_build_takes(example, error, says) -> None:
    # the message once said "export_onnx:" to a build(runtime="jax") caller
    spec = specs.ModuleSpec(
        class_path="torch.nn.Linear", init_args={"in_features": 4, "out_features": 2}
    )
    with pytest.raises(error, match=says) as caught:
        adapters.build(spec, runtime="jax", example_input=example)
    assert "export_onnx:" not in str(caught.value)


SOURCE_CASES = [
    specs.ModuleSpec(
        class_path="timm.models.vision_transformer.VisionTransformer", init_args=TINY_VIT
    ),
    specs.FunctionSpec(
        path="timm.create_model",
        arguments={"model_name": "resnet10t", "num_classes": 0, "pretrained": False},
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("spec", SOURCE_CASES, ids=["module", "function"])
def test_runtime_jax_per_source(spec) -> None:
    ref = adapters.build(spec)
    low = adapters.lower_to_jax(ref, torch.randn(2, 3, 32, 32))
    assert low.info["cache"] in ("miss", "hit") or low.info["cache"].startswith("off: ")
    x = x_image(batch=2)
    np.testing.assert_allclose(
        low.forward(low.params, x), ref(torch.from_numpy(x)).numpy(), atol=1e-4, rtol=1e-4
    )


@pytest.mark.slow
def test_build_runtime_jax_timm_out_indices_keeps_eval_mode() -> None:
    spec = specs.TimmSpec(model_name="resnet10t", pretrained=False, out_indices=(-2, -1))
    low = adapters.build(spec, runtime="jax", example_input=torch.randn(2, 3, 32, 32))
    assert not low.module.training  # batch norm on running statistics, as the torch adapter
    x = x_image(batch=2)
    with torch.no_grad():
        want = low.module.forward_intermediates(
            torch.from_numpy(x), indices=[-2, -1], intermediates_only=True
        )
    got = low.forward(low.params, x)
    assert [g.shape for g in got] == [tuple(w.shape) for w in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_build_runtime_jax_huggingface(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(tmp_path / "vit")
    spec = specs.HuggingFaceSpec(
        model_name_or_path=str(tmp_path / "vit"), transforms=(specs.ClsToken(),)
    )
    low = adapters.build(spec, runtime="jax", example_input=torch.randn(2, 3, 32, 32))
    ref = adapters.build(spec)  # pretrained weights: the same as the module lowered
    x = x_image(batch=2)
    np.testing.assert_allclose(
        low.forward(low.params, x), ref(torch.from_numpy(x)).numpy(), atol=1e-4
    )


@pytest.mark.slow
def test_cli_embed_runtime_jax_equals_torch(tmp_path, capsys) -> None:
    from adapters._src.app import cli, store

    spec = {"source": "timm", "model_name": "vit_tiny_patch16_224", "pretrained": False,
            "model_kwargs": TINY_VIT}  # fmt: skip
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    out = {}
    for runtime in ("torch", "jax"):
        out[runtime] = tmp_path / f"{runtime}.safetensors"
        argv = ["embed", str(tmp_path / "tiny.yaml"), "--data", "digits", "--limit", "20",
                "--runtime", runtime, "--out", str(out[runtime])]  # fmt: skip
        assert cli.main(argv) == 0, capsys.readouterr().err
    a, b = (store.load_embeddings(out[r]) for r in ("torch", "jax"))
    assert a.embeddings.shape == (20, 192)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(b.embeddings, a.embeddings, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(any(d.platform == "gpu" for d in jax.devices()), reason="JAX sees a GPU here")
def test_runtime_jax_on_cuda_without_a_jax_gpu_names_the_device() -> None:
    with pytest.raises(adapters.BuildError, match=r"device: runtime='jax'.*sees no GPU"):
        adapters.build(SPEC, runtime="jax", device="cuda")


@pytest.mark.slow  # a lowering, a jax.export and a cache write: ~5-10 s
def test_build_without_an_example_traces_the_models_own_size() -> None:
    # img_size=32 in model_kwargs: the pretrained config says 224, the model takes 32
    backbone = adapters.build(SPEC, runtime="jax")
    assert backbone.info["input_shape"] == (1, 3, 32, 32)
    x = x_image(batch=2, seed=4)
    ref = adapters.build(SPEC)  # other random weights: run it on the lowered adapter's
    with torch.no_grad():
        want = ref.forward(interop.to_torch(backbone.params), torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(jax.jit(backbone.forward)(backbone.params, x), want, atol=1e-4)


def test_exact_float32_turns_tf32_off_in_both_frameworks_and_restores() -> None:
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")  # TF32 allowed, as a user may have set it
    try:
        with exact_float32("cuda"):
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.backends.cudnn.allow_tf32 is False
            assert jax.config.jax_default_matmul_precision == "highest"
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cudnn.allow_tf32 is before[1]
        assert jax.config.jax_default_matmul_precision is None
        with exact_float32("cpu"):  # nothing to change on the CPU
            assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before[0])


def test_exact_float32_works_after_torchs_test_utilities_froze_the_flags() -> None:
    # importing torch.testing._internal (a user's test, the conformance suite) makes plain
    # assignment to torch.backends.cudnn flags raise; the first-build check then failed
    code = (
        "import torch, torch.testing._internal.common_utils\n"
        "from adapters._src.runtimes.jax.device import exact_float32\n"
        "with exact_float32('cuda'):\n"
        "    assert torch.backends.cudnn.allow_tf32 is False\n"
        "assert torch.backends.cudnn.allow_tf32 is True\n"
        "print('ok')\n"
    )
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": root}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.stdout.strip() == "ok", run.stderr[-2000:]


def test_the_cache_key_names_the_export_platform(pair) -> None:
    ref, low, _ = pair
    assert export_platform(jax.devices("cpu")[0]) == "cpu"
    x = torch.randn(2, 3, 32, 32)
    keys = {p: jax_cache_key(ref, x, True, p) for p in ("cpu", "cuda")}
    assert keys["cpu"] == low.info["cache_key"] and keys["cuda"] != keys["cpu"]


def _jax_gpu() -> str | None:
    """Why there is no GPU JAX backend and CUDA torch here, or None."""
    if not torch.cuda.is_available():
        return "needs a CUDA device for torch (torch.cuda.is_available() is False)"
    try:
        jax.devices("gpu")
    except RuntimeError:
        return f"needs a GPU backend for jax {jax.__version__} (a CUDA jaxlib); it has none"
    return None


@pytest.mark.cuda
@pytest.mark.skipif(_jax_gpu() is not None, reason=str(_jax_gpu()))
def test_runtime_jax_on_cuda_runs_on_the_gpu_sharing_the_torch_weights() -> None:
    torch.manual_seed(0)
    backbone = adapters.build(SPEC, runtime="jax", device="cuda")
    gpu = jax.devices("gpu")[0]
    assert backbone.info["device"] == f"cuda:{gpu.id}"
    state = backbone.module.state_dict()  # the torch module the source moved to the GPU once
    for name, t in state.items():
        assert t.device.type == "cuda" and backbone.params[name].devices() == {gpu}, name
        if t.dtype.is_floating_point:
            assert backbone.params[name].unsafe_buffer_pointer() == t.data_ptr(), name
    x = torch.from_numpy(x_image(batch=4, seed=5)).cuda()
    xj = interop.to_jax(x)  # jit takes JAX arrays: this one shares x's GPU memory
    ref = adapters.build(SPEC, device="cuda")  # other random weights: run it on these
    params = interop.to_torch(backbone.params)
    forward = jax.jit(backbone.forward)
    # at full float32 the lowering on the GPU equals torch on the GPU as on the CPU ...
    with exact_float32("cuda"), torch.no_grad():
        got, want = forward(backbone.params, xj), ref.forward(params, x)
    assert got.devices() == {gpu}
    np.testing.assert_allclose(np.asarray(got), want.cpu().numpy(), atol=1e-4, rtol=0)
    # ... and at each framework's default (TF32 in XLA) within TF32's rounding
    with torch.no_grad():
        got, want = forward(backbone.params, xj), ref.forward(params, x)
    scale = float(want.abs().max())
    np.testing.assert_allclose(np.asarray(got), want.cpu().numpy(), atol=2e-2 * scale, rtol=0)
    host = np.asarray(x.cpu())  # host input: moved to the params' GPU by forward
    np.testing.assert_allclose(np.asarray(forward(backbone.params, host)), got, atol=1e-6)

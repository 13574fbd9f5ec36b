"""``adapters.build(spec, device=...)``: where params land (pointers), that outputs equal the
plain framework call, the input-device check of ``forward``, and one `BuildError` naming
``device`` for every bad or unavailable device. CUDA cases skip without a GPU."""

from __future__ import annotations

import textwrap

import attrs
import jax
import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import adapters
import specs
from adapters._src.devices import normalize_device
from adapters._src.errors import BuildError
from adapters._src.torch_module import torch_adapter


def _jax_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


CUDA = torch.cuda.is_available()
JAX_GPU = _jax_gpu()


def needs_cuda(test):
    return pytest.mark.cuda(
        pytest.mark.skipif(not CUDA, reason="needs a CUDA device (torch.cuda.is_available())")(test)
    )


without_cuda = pytest.mark.skipif(CUDA, reason="checks the error for CUDA on a machine without")

LINEAR = specs.ModuleSpec(
    class_path="torch.nn.Linear", init_args={"in_features": 8, "out_features": 4}
)
TINY_VIT = specs.TimmSpec(
    "vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={
        "img_size": 16,
        "patch_size": 8,
        "embed_dim": 16,
        "depth": 1,
        "num_heads": 2,
        "num_classes": 0,
    },
)
DENSE = specs.FlaxSpec(module="flax.linen.Dense", init_args={"features": 4}, input_shape=(1, 8))
TORCH_CASES = {"linear": (LINEAR, (3, 8)), "vit": (TINY_VIT, (2, 3, 16, 16))}


def rand(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def plain_twin(adapter: adapters.Adapter, device: str = "cpu") -> torch.nn.Module:
    """The same architecture as a separate plain module with the adapter's weights."""
    import copy

    twin = copy.deepcopy(adapter.module).to(device)
    twin.load_state_dict({k: v.to(device) for k, v in adapter.params.items()})
    return twin.eval()


@pytest.fixture(scope="module")
def torch_builds():
    return {name: adapters.build(spec) for name, (spec, _) in TORCH_CASES.items()}


USERLIB = """
import torch

import adapters

HELD = {"w": torch.randn(8, 4)}


def load_params():
    return HELD


def matmul(params, x):
    return x @ params["w"]


def load_meta_adapter():
    return adapters.Adapter(forward=matmul, params={"w": torch.empty(8, 4, device="meta")}, spec=None)
"""


@pytest.fixture(scope="module")
def userlib(tmp_path_factory):
    path = tmp_path_factory.mktemp("device_userlib")
    (path / "fm_device_userlib.py").write_text(textwrap.dedent(USERLIB))
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(path))
    yield "fm_device_userlib"
    mp.undo()


# ---------------------------------------------------------------------------------------------
# CPU placement
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", [None, "cpu", "cpu:0", torch.device("cpu")], ids=repr)
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_cpu_device_forms_match_the_plain_call(case, device):
    spec, shape = TORCH_CASES[case]
    backbone = adapters.build(spec, device=device)
    assert backbone.info["device"] == "cpu"
    assert {t.device for t in backbone.params.values()} == {torch.device("cpu")}
    # params are the module's own tensors: no copy on the way
    state = backbone.module.state_dict()
    assert all(backbone.params[k].data_ptr() == state[k].data_ptr() for k in state)
    x = rand(shape)
    with torch.no_grad():
        ref = plain_twin(backbone)(x)
    torch.testing.assert_close(backbone(x), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")], ids=repr)
def test_moving_to_the_cpu_keeps_the_module_memory(device):
    module = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4))
    before = {k: v.data_ptr() for k, v in module.state_dict().items()}
    backbone = torch_adapter(module, spec=None, device=device)
    assert {k: v.data_ptr() for k, v in backbone.params.items()} == before
    assert backbone.info["device"] == "cpu"


def test_registry_name_builds_on_the_device():
    backbone = adapters.build("universal/vit_tiny_patch16_224_random", device="cpu")
    assert backbone.info["device"] == "cpu" and backbone.info["registry"]


def test_flax_params_are_committed_to_the_jax_device():
    backbone = adapters.build(DENSE, device="cpu")
    leaves = jax.tree_util.tree_leaves(backbone.params)
    assert all(leaf.committed and leaf.devices() == {jax.devices("cpu")[0]} for leaf in leaves)
    assert backbone.info["device"] == "cpu"
    x = np.asarray(rand((3, 8)))
    np.testing.assert_allclose(
        backbone(x), backbone.module.apply(backbone.params, x), rtol=1e-6, atol=1e-6
    )


def test_custom_params_move_without_a_copy_on_the_cpu(userlib):
    import fm_device_userlib

    spec = specs.CustomSpec(load=f"{userlib}.load_params", forward=f"{userlib}.matmul")
    backbone = adapters.build(spec, device="cpu")
    assert backbone.params["w"].data_ptr() == fm_device_userlib.HELD["w"].data_ptr()
    x = rand((2, 8))
    torch.testing.assert_close(backbone(x), x @ fm_device_userlib.HELD["w"])


# ---------------------------------------------------------------------------------------------
# forward: inputs on another device (simulated with "meta" tensors)
# ---------------------------------------------------------------------------------------------

WRONG_INPUTS = {
    "tensor": (lambda t: t, "x"),
    "dict": (lambda t: {"pixel_values": t}, "x['pixel_values']"),
    "tuple": (lambda t: (t,), "x[0]"),
}


@pytest.mark.parametrize("params", ["own", "copied"])
@pytest.mark.parametrize("form", sorted(WRONG_INPUTS))
@pytest.mark.parametrize("device", [None, "cpu"], ids=repr)
def test_input_on_another_device_names_the_argument(torch_builds, device, form, params):
    backbone = adapters.build(LINEAR, device=device) if device else torch_builds["linear"]
    wrap, name = WRONG_INPUTS[form]
    p = backbone.params if params == "own" else {k: v.clone() for k, v in backbone.params.items()}
    with pytest.raises(ValueError) as info:
        backbone.forward(p, wrap(torch.empty(3, 8, device="meta")))
    message = str(info.value)
    assert f"argument {name} is on device 'meta', expected 'cpu'" in message
    assert f"{name}.to('cpu')" in message


def test_the_check_leaves_right_inputs_alone(torch_builds):
    backbone = torch_builds["linear"]
    x = rand((3, 8))
    # one correct call after a refused one: nothing was left half-done
    with pytest.raises(ValueError, match="meta"):
        backbone(x.to("meta"))
    with torch.no_grad():
        ref = plain_twin(backbone)(x)
    torch.testing.assert_close(backbone(x), ref)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@without_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"], ids=repr)
@pytest.mark.parametrize(
    "spec",
    [LINEAR, TINY_VIT, "universal/vit_tiny_patch16_224_random"],
    ids=["module", "timm", "registry"],
)
def test_cuda_without_a_gpu_is_a_build_error(spec, device):
    with pytest.raises(BuildError) as info:
        adapters.build(spec, device=device)
    assert info.value.field == "device"
    assert "torch sees no GPU" in str(info.value) and "device='cpu'" in str(info.value)


@without_cuda
def test_cuda_torch_device_object_without_a_gpu():
    with pytest.raises(BuildError, match=r"^device: 'cuda' asks for CUDA"):
        adapters.build(LINEAR, device=torch.device("cuda"))


@pytest.mark.skipif(JAX_GPU, reason="checks the error for a JAX without a GPU backend")
def test_flax_cuda_without_a_jax_gpu_is_a_build_error():
    with pytest.raises(BuildError, match=r"^device: .*JAX .* has no GPU backend.*device='cpu'"):
        adapters.build(DENSE, device="cuda")


@pytest.mark.parametrize(
    "device",
    ["gpu", "tpu", "mps", "meta", "cuda:-1", "CUDA", "", 3, 1.5, ["cpu"]],
    ids=repr,
)
def test_bad_device_values_name_the_field(device):
    with pytest.raises(BuildError) as info:
        adapters.build(LINEAR, device=device)
    assert info.value.field == "device"
    assert "Expected 'cpu', 'cuda', 'cuda:N'" in str(info.value)


def test_gpu_is_pointed_at_cuda():
    with pytest.raises(BuildError, match="Use 'cuda' for a GPU"):
        adapters.build(LINEAR, device="gpu")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.text(max_size=10), st.from_regex(r"\A(cpu|cuda)(:[0-9]{1,3})?\Z", fullmatch=True))
)
def test_normalize_device_gives_a_canonical_name_or_a_build_error(text):
    try:
        name = normalize_device(text)
    except BuildError as err:
        assert err.field == "device"
        return
    assert name in ("cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit())
    assert normalize_device(name) == name  # canonical names are fixed points
    assert torch.device(name).type == name.partition(":")[0]  # and torch reads them the same


def _linear_onnx(path) -> str:
    """A (2, 8) @ (8, 4) ONNX graph, built with onnx.helper (no exporter involved)."""
    w = rand((8, 4)).numpy()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return w


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")], ids=repr)
def test_onnx_device_argument_may_repeat_the_spec(tmp_path, device):
    w = _linear_onnx(tmp_path / "linear.onnx")
    backbone = adapters.build(specs.OnnxSpec(path=str(tmp_path / "linear.onnx")), device=device)
    assert backbone.info["device"] == "cpu"
    x = rand((2, 8))
    np.testing.assert_allclose(np.asarray(backbone(x)), x.numpy() @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("spec_device", "device"),
    [("cpu", "cuda"), ("cpu", "cuda:0"), ("cuda", "cpu"), ("cuda", "cuda:1")],
)
def test_onnx_device_conflict_is_a_build_error(spec_device, device):
    # the file need not exist: the conflict is found before anything is loaded
    spec = specs.OnnxSpec(path="never-read.onnx", device=spec_device)
    with pytest.raises(BuildError, match=rf"^device: device='{device}' conflicts with the ONNX"):
        adapters.build(spec, device=device)


def test_onnxruntime_fast_path_refuses_cuda_before_building():
    with pytest.raises(BuildError, match="serves the exported backbone on the CPU"):
        adapters.build(TINY_VIT, runtime="onnxruntime", device="cuda")


@attrs.frozen
class HeldSpec:
    """A source whose builder takes no device argument."""

    device: str
    transforms: tuple = ()


def _build_held(spec: HeldSpec) -> adapters.Adapter:
    return adapters.Adapter(
        forward=lambda p, x: x @ p["w"],
        params={"w": torch.ones(8, 4, device=spec.device)},
        spec=spec,
    )


adapters.register_source(HeldSpec, _build_held, overwrite=True)


def test_builder_without_device_keyword_is_verified():
    assert adapters.build(HeldSpec("cpu"), device="cpu").params["w"].device.type == "cpu"
    with pytest.raises(BuildError, match=r"^device: the builder for HeldSpec takes no device"):
        adapters.build(HeldSpec("meta"), device="cpu")


def test_loaded_adapter_cannot_be_moved(userlib):
    spec = specs.CustomSpec(load=f"{userlib}.load_meta_adapter")
    with pytest.raises(BuildError, match=r"^device: .*cannot be moved.*nn.Module"):
        adapters.build(spec, device="cpu")


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")], ids=repr)
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
@needs_cuda
def test_cuda_build_matches_the_plain_cpu_call(case, device):
    spec, shape = TORCH_CASES[case]
    backbone = adapters.build(spec, device=device)
    assert backbone.info["device"] == "cuda:0"
    assert {t.device for t in backbone.params.values()} == {torch.device("cuda", 0)}
    state = backbone.module.state_dict()
    assert all(backbone.params[k].data_ptr() == state[k].data_ptr() for k in state)
    x = rand(shape)
    with torch.no_grad():
        ref = plain_twin(backbone, "cpu")(x)
    y = backbone(x.cuda())
    assert y.device == torch.device("cuda", 0)
    torch.testing.assert_close(y.cpu(), ref, rtol=1e-4, atol=1e-4)


@needs_cuda
def test_cpu_input_to_a_cuda_adapter_is_refused_with_the_fix():
    backbone = adapters.build(LINEAR, device="cuda")
    with pytest.raises(ValueError) as info:
        backbone(rand((3, 8)))
    message = str(info.value)
    assert "argument x is on device 'cpu', expected 'cuda:0'" in message
    assert "non_blocking=True" in message


@needs_cuda
def test_missing_gpu_index_is_a_build_error():
    n = torch.cuda.device_count()
    with pytest.raises(BuildError, match=rf"^device: there is no GPU {n}"):
        adapters.build(LINEAR, device=f"cuda:{n}")


@pytest.mark.cuda
@pytest.mark.skipif(not JAX_GPU, reason="needs jax with a GPU backend")
def test_flax_cuda_commits_params_to_the_gpu():
    backbone = adapters.build(DENSE, device="cuda")
    gpu = jax.devices("gpu")[0]
    assert all(leaf.devices() == {gpu} for leaf in jax.tree_util.tree_leaves(backbone.params))
    x = np.asarray(rand((3, 8)))
    cpu_params = jax.device_put(backbone.params, jax.devices("cpu")[0])
    np.testing.assert_allclose(
        np.asarray(backbone(x)), backbone.module.apply(cpu_params, x), rtol=1e-4, atol=1e-4
    )

"""Every runtime at a low precision: the JAX lowering (low params and activations, checked
against torch at the same precision on its first build), ONNX Runtime (float16 exports; a
clear refusal of bfloat16, which its CPU provider cannot run), ``OnnxSpec`` files, and
``interop.jax_function`` / the DLPack bridge on bfloat16 and float16 tensors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import interop
import specs

#: a random-weight timm ViT (LayerNorm, GELU, softmax attention), built in a blink
VIT = specs.TimmSpec(
    "vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "num_classes": 0},
)


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16-true", jnp.bfloat16), ("16-mixed", jnp.float16)]
)
def test_jax_runs_the_precision_of_torch(tmp_path, monkeypatch, precision, dtype) -> None:
    monkeypatch.setenv("FM_ADAPTERS_CACHE", str(tmp_path))
    ref = adapters.build(VIT, precision=precision)
    low = adapters.build(VIT, precision=precision, runtime="jax")
    assert low.spec.precision == precision and low.info["cache"] == "miss"
    stored = {a.dtype for a in low.params.values() if jnp.issubdtype(a.dtype, jnp.floating)}
    assert stored == (
        {jnp.dtype(dtype)} if precision.endswith("-true") else {jnp.dtype(jnp.float32)}
    )
    x = _x(3)
    y = jax.jit(low.forward)(low.params, x.numpy())
    assert y.dtype == dtype
    # the first-build check's bound (adapters/_src/precision.py), on other inputs
    want = ref(x).float().numpy()
    atol, rtol = adapters._src.precision.parity_tolerance(precision)
    assert np.abs(np.asarray(y, np.float32) - want).max() <= atol + rtol * np.abs(want).max()
    # a float32 build of the same spec is another cache entry, not this one
    assert adapters.build(VIT, runtime="jax").info["cache"] == "miss"


def test_jax_params_share_the_low_precision_torch_memory(tmp_path) -> None:
    ref = adapters.build(VIT, precision="bf16-true")
    low = adapters.lower_to_jax(ref, _x(), cache_dir=tmp_path)
    for name, t in ref.params.items():
        if t.is_floating_point():
            assert t.dtype == torch.bfloat16
            assert low.params[name].unsafe_buffer_pointer() == t.data_ptr(), name


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_onnxruntime_refuses_bfloat16_before_exporting(tmp_path, monkeypatch, precision) -> None:
    monkeypatch.setenv("FM_ADAPTERS_CACHE", str(tmp_path))
    with pytest.raises(adapters.BuildError, match="runtime='torch' or runtime='jax'") as err:
        adapters.build(VIT, precision=precision, runtime="onnxruntime")
    assert err.value.field == "precision"
    assert not any(tmp_path.iterdir())  # nothing was exported


def test_onnxruntime_serves_a_float16_export() -> None:
    ref = adapters.build(VIT, precision="16-true")
    served = adapters.build(VIT, precision="16-true", runtime="onnxruntime")
    assert served.spec.precision == "16-true"
    x = _x(3)
    y = served(x)
    assert y.dtype == torch.float16
    want = ref(x).float()
    atol, rtol = adapters._src.precision.parity_tolerance("16-true")
    assert float((y.float() - want).abs().max()) <= atol + rtol * float(want.abs().max())


def test_an_onnx_file_is_served_only_at_the_precision_it_computes_in(tmp_path) -> None:
    path = tmp_path / "vit.onnx"
    exported = adapters.export_onnx(adapters.build(VIT, precision="16-true"), path, _x())
    assert exported.precision == "16-true"
    assert adapters.build(exported)(_x()).dtype == torch.float16
    assert adapters.build(specs.OnnxSpec(path=str(path))).spec.precision == "32-true"
    float32 = tmp_path / "vit32.onnx"
    adapters.export_onnx(adapters.build(VIT), float32, _x())
    with pytest.raises(adapters.BuildError, match="cannot run it at 16-true") as err:
        adapters.build(specs.OnnxSpec(path=str(float32), precision="16-true"))
    assert err.value.field == "precision"


@pytest.mark.parametrize("precision", ["bf16-true", "16-true"])
def test_jax_function_runs_low_precision_backbones_on_shared_memory(precision) -> None:
    backbone = adapters.build(VIT, precision=precision)
    params = interop.jax_params(backbone)
    dtype = backbone(_x()).dtype
    for name, t in backbone.params.items():
        if t.is_floating_point():  # zero copy: the same buffers, in the low dtype
            assert t.dtype == dtype and str(params[name].dtype) == str(dtype)[len("torch.") :]
            assert params[name].unsafe_buffer_pointer() == t.data_ptr(), name
    f = jax.jit(interop.jax_function(backbone))
    x = _x()
    y = f(params, interop.to_jax(x))
    assert y.dtype == params["cls_token"].dtype
    np.testing.assert_array_equal(np.asarray(y, np.float32), backbone(x).float().numpy())
    back = interop.to_torch(y)  # and back to torch: the same memory again
    assert back.dtype == dtype
    assert back.data_ptr() == y.unsafe_buffer_pointer()

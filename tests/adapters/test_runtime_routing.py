"""build routes OnnxSpec to the ONNX adapter and runtime="onnxruntime" to ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import adapters
import specs

pytest.importorskip("onnxruntime")

SPEC = specs.ModuleSpec(
    class_path="torch.nn.Conv2d",
    init_args={"in_channels": 3, "out_channels": 4, "kernel_size": 3},
    transforms=(specs.L2Normalize(axis=1),),
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FM_ADAPTERS_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.slow
def test_runtime_onnxruntime_matches_torch(cache) -> None:
    x = torch.randn(2, 3, 8, 8)
    torch.manual_seed(0)  # random init: seed both builds alike
    torch_backbone = adapters.build(SPEC)
    torch.manual_seed(0)
    served = adapters.build(SPEC, runtime="onnxruntime", example_input=x)
    assert served.framework == "onnx" and served.spec == SPEC
    np.testing.assert_allclose(
        np.asarray(served(x)), torch_backbone(x).numpy(), atol=1e-5, rtol=1e-5
    )


def test_runtime_onnxruntime_needs_an_input_shape(cache) -> None:
    with pytest.raises(adapters.BuildError, match=r"^example_input: .*Pass example_input="):
        adapters.build(SPEC, runtime="onnxruntime")


@pytest.mark.slow
def test_onnx_spec_routes_to_the_onnx_builder(cache) -> None:
    x = torch.randn(2, 3, 8, 8)
    torch_backbone = adapters.build(SPEC)
    onnx_spec = adapters.export_onnx(torch_backbone, cache / "conv.onnx", x)
    backbone = adapters.build(onnx_spec)
    assert backbone.framework == "onnx" and dict(backbone.params) == {}
    out = backbone(x)
    out = out[0] if isinstance(out, (tuple, list)) else out
    np.testing.assert_allclose(np.asarray(out), torch_backbone(x).numpy(), atol=1e-5, rtol=1e-5)

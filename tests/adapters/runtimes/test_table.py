"""build routes OnnxSpec to the ONNX adapter and runtime="onnxruntime" to ONNX Runtime; every
runtime of the table has the same face."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.app import cli
from adapters._src.runtimes.table import RUNTIMES, runtime_module

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


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_every_runtime_has_the_same_face(name: str) -> None:
    module = runtime_module(name)
    convert = inspect.signature(module.convert).parameters
    assert list(convert)[:2] == ["adapter", "example_input"]
    assert convert["example_input"].default is None
    assert [p.kind for p in convert.values()][-1] is inspect.Parameter.VAR_KEYWORD
    assert list(inspect.signature(module.check_device).parameters) == ["device"]
    module.check_device(None)  # every runtime runs where the source leaves the params
    module.check_device("cpu")


def test_the_cli_offers_the_runtimes_of_the_table() -> None:
    commands = cli.build_parser()._subparsers._group_actions[0].choices.values()
    flags = [a for c in commands for a in c._actions if "--runtime" in a.option_strings]
    assert flags and all(tuple(a.choices) == tuple(RUNTIMES) for a in flags)


def test_an_unknown_runtime_lists_the_table() -> None:
    with pytest.raises(adapters.BuildError, match=r"^runtime: .*one of torch, onnxruntime, jax"):
        adapters.build(SPEC, runtime="tensorrt")


def test_the_torch_runtime_refuses_options() -> None:
    backbone = adapters.build(SPEC)
    assert runtime_module("torch").convert(backbone) is backbone
    with pytest.raises(TypeError, match=r"runtime='torch' takes no options, got \['atol'\]"):
        runtime_module("torch").convert(backbone, None, atol=1.0)

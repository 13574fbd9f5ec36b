"""The ``runtime="onnxruntime"`` fast path: exported once, cached, parity-checked, served."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src import ort_runtime
from adapters._src.ort_runtime import ParityError, cache_key, serve_with_onnxruntime
from adapters._src.torch_module import torch_adapter

ATOL = 1e-4


def _cnn(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 6, 3, stride=2),
        torch.nn.Flatten(2),
    )


def _adapter(seed: int = 0) -> adapters.Adapter:
    # output: a list [(B, 6), (B, 6, 25)], like a CLS token plus patch tokens
    return torch_adapter(
        _cnn(seed),
        specs.ModuleSpec("torch.nn.Sequential"),
        post=lambda y: [y.mean(-1), y],
    )


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every export the fast path makes (a spy; the real export still runs)."""
    calls: list[str] = []
    real = ort_runtime.export_adapter

    def spy(adapter, path, example_input, **kwargs):
        calls.append(str(path))
        return real(adapter, path, example_input, **kwargs)

    monkeypatch.setattr(ort_runtime, "export_adapter", spy)
    return calls


FRAMEWORKS = {
    "torch": lambda t: t,
    "numpy": lambda t: t.numpy(),
    "jax": lambda t: jnp.asarray(t.numpy()),
}


def test_exported_once_then_served_from_the_cache(tmp_path, exports):
    torch_backbone = _adapter()
    example = torch.zeros(1, 3, 12, 12)
    first = serve_with_onnxruntime(torch_backbone, example, tmp_path)
    assert first.info["cache"] == "miss" and len(exports) == 1
    model = tmp_path / first.info["cache_key"][:32] / "model.onnx"
    assert first.info["onnx_path"] == str(model)
    stamp = model.stat().st_mtime_ns
    report = first.info["parity"]
    assert report["n_inputs"] == 2 and report["max_abs"] < ATOL

    second = serve_with_onnxruntime(_adapter(), example, tmp_path)  # same weights, new objects
    assert second.info["cache"] == "hit" and len(exports) == 1
    assert model.stat().st_mtime_ns == stamp
    assert second.info["parity"] == first.info["parity"]
    assert second.spec == torch_backbone.spec and second.params == {}
    assert second.framework == "onnx"

    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        want = torch_backbone(x)
    for name, conv in FRAMEWORKS.items():
        got = second(conv(x))
        assert isinstance(got, list) and len(got) == 2, name  # the torch output's structure
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), w.numpy(), atol=ATOL, rtol=0)


def test_new_weights_or_input_shape_mean_a_new_export(tmp_path, exports):
    example = torch.zeros(2, 3, 12, 12)
    base = cache_key(_adapter(0), example)
    assert cache_key(_adapter(0), example) == base  # stable across builds
    assert cache_key(_adapter(1), example) != base  # different random init
    assert cache_key(_adapter(0), torch.zeros(2, 3, 16, 16)) != base
    assert cache_key(_adapter(0), torch.zeros(5, 3, 12, 12)) == base  # batch is dynamic
    relabelled = torch_adapter(_cnn(0), specs.ModuleSpec("torch.nn.ModuleList"))
    assert cache_key(relabelled, example) != base

    a = serve_with_onnxruntime(_adapter(0), example, tmp_path)
    b = serve_with_onnxruntime(_adapter(1), example, tmp_path)
    assert (a.info["cache"], b.info["cache"]) == ("miss", "miss") and len(exports) == 2
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        np.testing.assert_allclose(b(x)[1], _adapter(1)(x)[1], atol=ATOL, rtol=0)


class ExportsSomethingElse(torch.nn.Module):
    """Computes 2x eagerly but 3x when traced: an export that silently disagrees."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 3 if torch.compiler.is_exporting() else x * 2


def test_parity_failure_raises_and_caches_nothing(tmp_path):
    backbone = torch_adapter(ExportsSomethingElse(), specs.ModuleSpec("torch.nn.Identity"))
    with pytest.raises(ParityError, match=r"does not match torch within.*Nothing was cached"):
        serve_with_onnxruntime(backbone, torch.ones(2, 4), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_torch_adapters_and_params(tmp_path):
    jax_backbone = adapters.Adapter(lambda p, x: x, {}, None, framework="jax")
    with pytest.raises(TypeError, match="expected a torch-family"):
        serve_with_onnxruntime(jax_backbone, torch.ones(2, 4), tmp_path)
    served = serve_with_onnxruntime(_adapter(), torch.zeros(2, 3, 12, 12), tmp_path)
    with pytest.raises(ValueError, match="weights baked into the graph"):
        served.forward(_adapter().params, torch.zeros(2, 3, 12, 12))


def test_build_with_runtime_onnxruntime(tmp_path, monkeypatch, exports):
    monkeypatch.setenv(ort_runtime.CACHE_ENV, str(tmp_path))
    spec = specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 8, "out_features": 4})
    torch.manual_seed(3)
    backbone = adapters.build(spec, runtime="onnxruntime", example_input=torch.zeros(1, 8))
    torch.manual_seed(3)
    reference = adapters.build(spec)
    assert backbone.info["runtime"] == "onnxruntime"
    assert backbone.info["onnx_path"].startswith(str(tmp_path / "onnx"))
    x = torch.randn(5, 8)
    assert adapters.parity(backbone, reference, x).ok(ATOL, 0)
    torch.manual_seed(3)
    again = adapters.build(spec, runtime="onnxruntime", example_input=torch.zeros(1, 8))
    assert again.info["cache"] == "hit" and len(exports) == 1

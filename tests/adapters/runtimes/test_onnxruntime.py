"""The ``runtime="onnxruntime"`` fast path: exported once, cached, parity-checked, served."""

from __future__ import annotations

import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import specs
from adapters import ParityError
from adapters._src.runtimes.cache_entry import CACHE_ENV, CacheWarning
from adapters._src.runtimes.onnxruntime import serve as ort_runtime
from adapters._src.runtimes.onnxruntime.cache import cache_key, default_cache_dir
from adapters._src.runtimes.onnxruntime.export import export_adapter
from adapters._src.runtimes.onnxruntime.fusion import fuse_attention
from adapters._src.runtimes.onnxruntime.serve import serve_with_onnxruntime
from adapters._src.torch_module import torch_adapter

#: exports real models to ONNX (seconds each): out of the fast lane (-m 'not slow')
pytestmark = pytest.mark.slow


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
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
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


def _tiny_vit() -> adapters.Adapter:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    module = VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=0
    )
    return torch_adapter(module.eval(), specs.ModuleSpec("timm.models.VisionTransformer"))


def _op_types(path: str) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(path, load_external_data=False).graph.node]


@pytest.mark.parametrize("external", [False, True])
def test_attention_is_fused_and_still_matches_torch(tmp_path, monkeypatch, external):
    from adapters._src.runtimes.onnxruntime import export as onnx_export

    if external:  # weights in model.onnx.data, as for a backbone over 1 GiB
        monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    backbone = _tiny_vit()
    served = serve_with_onnxruntime(backbone, torch.zeros(2, 3, 32, 32), tmp_path)
    assert served.info["fusions"] == {"sdpa": 2, "multi_head_attention": 2}
    options = served.module.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    entry = Path(served.info["onnx_path"]).parent
    files = ["meta.json", "model.onnx"] + (["model.onnx.data"] if external else [])
    assert sorted(p.name for p in entry.iterdir()) == files
    ops = _op_types(served.info["onnx_path"])
    assert ops.count("MultiHeadAttention") == 2 and "Softmax" not in ops
    for batch in (1, 3, 8):  # the batch axis stays dynamic through the rewrite
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            want = backbone(x)
        np.testing.assert_allclose(served(x).numpy(), want.numpy(), atol=ATOL, rtol=0)
    again = serve_with_onnxruntime(_tiny_vit(), torch.zeros(2, 3, 32, 32), tmp_path)
    assert again.info["cache"] == "hit" and again.info["fusions"] == served.info["fusions"]


def test_models_without_attention_are_left_as_exported(tmp_path):
    path = tmp_path / "cnn.onnx"
    export_adapter(_adapter(), path, torch.zeros(2, 3, 12, 12))
    before = path.read_bytes()
    assert fuse_attention(path) == {"sdpa": 0, "multi_head_attention": 0}
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.onnx"]


CORRUPTIONS = {
    "model-bytes": lambda entry: _flip_byte(entry / "model.onnx"),
    "meta-garbage": lambda entry: (entry / "meta.json").write_text("{not json"),
}


def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS))
def test_corrupt_cache_entry_is_rebuilt_and_named(tmp_path, exports, corrupt):
    x = torch.randn(3, 3, 12, 12)
    first = serve_with_onnxruntime(_adapter(), torch.zeros(2, 3, 12, 12), tmp_path)
    entry = Path(first.info["onnx_path"]).parent
    CORRUPTIONS[corrupt](entry)
    with pytest.warns(CacheWarning, match=re.escape(repr(str(entry)))) as caught:
        again = serve_with_onnxruntime(_adapter(), torch.zeros(2, 3, 12, 12), tmp_path)
    # named as a cache entry, not as a spec field (``path: ...``) the user never wrote
    assert str(caught[0].message).startswith("ONNX Runtime cache entry ")
    assert again.info["cache"] == "miss" and len(exports) == 2
    with torch.no_grad():
        want = _adapter()(x)
    for got, ref in zip(again(x), want, strict=True):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=ATOL, rtol=0)
    third = serve_with_onnxruntime(_adapter(), torch.zeros(2, 3, 12, 12), tmp_path)
    assert third.info["cache"] == "hit" and len(exports) == 2  # intact again: no warning


@pytest.mark.parametrize(
    ("override", "xdg", "expected"),
    [
        ("{tmp}/mine", "{tmp}/xdg", "{tmp}/mine/onnx"),  # FM_ADAPTERS_CACHE wins
        (None, "{tmp}/xdg", "{tmp}/xdg/fm-adapters/onnx"),
        (None, None, "{home}/.cache/fm-adapters/onnx"),
        (None, "", "{home}/.cache/fm-adapters/onnx"),
        (None, "relative/xdg", "{home}/.cache/fm-adapters/onnx"),  # the XDG spec ignores it
    ],
)
def test_cache_dir_follows_override_then_xdg(
    override: str | None,
    xdg: str | None,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name, value in ((CACHE_ENV, override), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert default_cache_dir() == Path(expected.format(tmp=tmp_path, home=home))

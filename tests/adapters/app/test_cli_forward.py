"""A forward that fails in ``inspect`` / ``embed`` is one line naming the input shape tried and
``--image-size``, exit 2 (the README's own custom example takes (..., 4), not 224x224)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

import specs
from adapters._src.app import backbone, cli
from adapters._src.app.backbone import run_forward
from adapters._src.app.errors import ForwardError

MYLIB = """
import torch

def load_weights(dim: int = 4):
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(dim, 3, generator=g), "b": torch.zeros(3)}

def affine(params, x):
    return x @ params["w"] + params["b"]
"""


@pytest.fixture
def custom_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "readme_mylib.py").write_text(textwrap.dedent(MYLIB))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "readme_mylib", raising=False)
    spec = tmp_path / "custom.yaml"
    spec.write_text(
        "source: custom\nload: readme_mylib.load_weights\nforward: readme_mylib.affine\n"
        "arguments: {dim: 4}\ntransforms: [l2_normalize]\n"
    )
    return str(spec)


@pytest.mark.parametrize("command", ["inspect", "embed"])
def test_failing_forward_is_one_line_with_shape_and_flag(capsys, custom_spec, tmp_path, command):
    argv = [command, custom_spec, "--device", "cpu"]
    out = tmp_path / "e.safetensors"
    if command == "embed":
        argv += ["--data", "digits", "--limit", "4", "--out", str(out)]
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    shape = "(1, 3, 224, 224)" if command == "inspect" else "(4, 3, 224, 224)"
    assert err[0].startswith(f"error: forward: the backbone failed on an input of shape {shape}")
    assert "mat1 and mat2" in err[0] and "--image-size N" in err[0]
    assert not out.exists()
    # the way out the message gives works
    assert cli.main([*argv, "--image-size", "4"]) == 0


def test_library_error_speaks_api_terms(custom_spec):
    import adapters

    backbone = adapters.build(specs.load(custom_spec))
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ForwardError, match=r"shape \(2, 3, 8, 8\).*image_size") as info:
        run_forward(backbone, x)
    assert info.value.shape == (2, 3, 8, 8) and isinstance(info.value.__cause__, RuntimeError)


@pytest.fixture
def strict_vit(tmp_path: Path) -> str:
    """A timm ViT for 32 px whose patch embedding asserts the input size (as timm's do)."""
    spec = tmp_path / "vit32.yaml"
    spec.write_text(
        "source: timm\nmodel_name: vit_tiny_patch16_224\npretrained: false\n"
        "model_kwargs: {img_size: 32, depth: 1, num_classes: 0}\n"
    )
    return str(spec)


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "{spec}"],
        ["embed", "{spec}", "--data", "digits", "--limit", "4", "--out", "{out}"],
        [
            "embed",
            "{spec}",
            "--data",
            "digits",
            "--limit",
            "4",
            "--out",
            "{out}",
            "--runtime",
            "onnxruntime",
        ],
        ["export", "{spec}", "--out", "{onnx}"],
    ],
    ids=["inspect", "embed", "embed-onnxruntime", "export"],
)
def test_a_backbone_assert_on_the_input_size_is_one_line(capsys, strict_vit, tmp_path, argv):
    """timm's ViT asserts the input size (``AssertionError: Input height (48) doesn't match
    model (32)``): one line naming --image-size, not a 40-line traceback."""
    out, onnx = tmp_path / "e.safetensors", tmp_path / "m.onnx"
    argv = [a.format(spec=strict_vit, out=out, onnx=onnx) for a in argv]
    code = cli.main(
        [*argv, "--image-size", "48", *(["--device", "cpu"] if "export" not in argv else [])]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: forward: the backbone failed on an input of shape (")
    assert "48, 48)" in err[0] and "Input height (48) doesn't match model (32)" in err[0]
    assert "--image-size N" in err[0]
    assert not out.exists() and not onnx.exists()


def _forward_from(filename: str):
    """A forward whose ``assert`` fails, compiled as if it were in ``filename``."""
    source = "def forward(params, x):\n    assert x.shape[-1] == 4, 'a failed assert'\n"
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["forward"]


def test_a_users_assert_is_a_forward_error_and_ours_stays_a_bug(tmp_path):
    from types import SimpleNamespace

    x = torch.zeros(2, 3, 8, 8)
    theirs = SimpleNamespace(forward=_forward_from(str(tmp_path / "mylib.py")), params={})
    with pytest.raises(ForwardError, match=r"shape \(2, 3, 8, 8\).*AssertionError"):
        run_forward(theirs, x)
    # an assert failing inside this project's code is a bug of ours: it surfaces as itself
    ours = SimpleNamespace(forward=_forward_from(backbone.__file__), params={})
    with pytest.raises(AssertionError, match="a failed assert"):
        run_forward(ours, x)

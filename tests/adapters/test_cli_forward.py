"""A forward that fails in ``inspect`` / ``embed`` is one line naming the input shape tried and
``--image-size``, exit 2 (the README's own custom example takes (..., 4), not 224x224)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

import specs
from adapters._src.app import cli, embed

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
    with pytest.raises(embed.ForwardError, match=r"shape \(2, 3, 8, 8\).*image_size") as info:
        embed.run_forward(backbone, x)
    assert info.value.shape == (2, 3, 8, 8) and isinstance(info.value.__cause__, RuntimeError)

"""Honest command-line output: which weights, logits vs features, an ``--out`` name that
matches the format, early split checks, "load" vs "embed" time, ONNX initializers."""

from __future__ import annotations

import re

import pytest
import timm
import torch
import yaml

from adapters._src.app import cli

TINY_KWARGS = {"img_size": 32, "depth": 1}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _spec(tmp_path, name: str, **kwargs) -> str:
    spec = {"source": "timm", "model_name": "vit_tiny_patch16_224", "pretrained": False}
    spec["model_kwargs"] = {**TINY_KWARGS, **kwargs}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_inspect_says_weights_and_logits_with_how_to_get_features(capsys, tmp_path):
    code, out, _ = run(capsys, "inspect", _spec(tmp_path, "logits.yaml"))
    assert code == 0
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **TINY_KWARGS).eval()
    classes = model(torch.randn(1, 3, 32, 32)).shape[1]
    assert f"output:      (1, {classes}) float32" in out
    assert "weights:     random (seed 0)" in out
    assert "output kind: classifier logits (B, classes)" in out
    (note,) = [x for x in out.splitlines() if x.startswith("note: ")]
    assert "logits" in note and "model_kwargs: {num_classes: 0}" in note

    code, out, _ = run(capsys, "inspect", _spec(tmp_path, "features.yaml", num_classes=0))
    assert code == 0 and "output kind: features (B, D)" in out and "note:" not in out


def test_embed_of_logits_says_so(capsys, tmp_path):
    out = tmp_path / "e.safetensors"
    argv = ["embed", _spec(tmp_path, "logits.yaml"), "--data", "digits", "--limit", "8"]
    code, text, err = run(capsys, *argv, "--image-size", "32", "--out", str(out))
    assert code == 0, err
    assert "weights: random (seed 0)" in text
    assert "note: the output is timm's classifier logits" in text


@pytest.mark.parametrize(
    ("name", "engine", "match"),
    [
        (
            "x.npy",
            "process",
            r"--out: embed writes a \.safetensors file, got .*x\.npy.*x\.safetensors",
        ),
        ("x", "process", r"--out: embed writes a \.safetensors file"),
        ("x.safetensors", "ray", r"--out: --engine ray writes a directory"),
    ],
)
def test_embed_out_name_must_match_the_format(capsys, tmp_path, name, engine, match):
    argv = ["embed", _spec(tmp_path, "s.yaml"), "--data", "digits", "--engine", engine]
    code, out, err = run(capsys, *argv, "--out", str(tmp_path / name))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert re.search(match, line), line
    assert "loading backbone" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_probe_limit_too_small_fails_before_embedding(capsys, tmp_path):
    code, out, err = run(capsys, "probe", _spec(tmp_path, "s.yaml"), "--limit", "5")
    assert code == 2
    assert "raise --limit" in err and len(err.strip().splitlines()) == 1
    assert out.splitlines() == [
        f"probe {tmp_path / 's.yaml'} on digits: linear head, 100 epochs, seed 0"
    ]  # nothing loaded, nothing embedded


def test_probe_of_an_embeddings_file_reports_load_time(capsys, tmp_path):
    emb = tmp_path / "e.safetensors"
    argv = ["embed", _spec(tmp_path, "s.yaml", num_classes=0), "--data", "digits"]
    assert run(capsys, *argv, "--limit", "150", "--image-size", "32", "--out", str(emb))[0] == 0
    code, out, err = run(capsys, "probe", str(emb), "--epochs", "3")
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("time: ")]
    assert line.startswith("time: load ") and "embed" not in line


def test_inspect_onnx_reports_initializers(capsys, tmp_path):
    import onnx
    from onnx import numpy_helper

    path = tmp_path / "m.onnx"
    code, _, err = run(
        capsys, "export", _spec(tmp_path, "s.yaml", num_classes=0), "--out", str(path)
    )
    assert code == 0, err
    arrays = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]
    count = sum(a.size for a in arrays)
    size = sum(a.nbytes for a in arrays)
    assert count > 0
    code, out, err = run(capsys, "inspect", str(path))
    assert code == 0, err
    assert f"initializers: {count:,} ({size / 2**20:.2f} MiB)" in out
    assert "parameters:" not in out
    assert f"weights:     ONNX file {path}" in out


@pytest.mark.parametrize("runtime", ["onnxruntime", "jax"])
def test_a_runtime_build_says_what_it_does_and_counts_its_weights(capsys, tmp_path, runtime):
    monkey_cache = tmp_path / "cache"
    argv = ["embed", _spec(tmp_path, "s.yaml", num_classes=0), "--data", "digits", "--limit", "4"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FM_ADAPTERS_CACHE", str(monkey_cache))  # a first build: nothing cached yet
        code, out, err = run(capsys, *argv, "--image-size", "32", "--runtime", runtime,
                             "--out", str(tmp_path / "e.safetensors"))  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    i = lines.index("loading backbone " + str(tmp_path / "s.yaml") + " ...")
    doing = {"onnxruntime": "exporting to ONNX", "jax": "lowering to JAX"}[runtime]
    assert lines[i + 1].startswith(f"{doing} for --runtime {runtime} (a first build")
    assert lines[i + 2].startswith(f"runtime: {runtime}, converted and cached (")
    assert str(monkey_cache) in lines[i + 2]
    (backbone,) = [x for x in lines if x.startswith("backbone: ")]
    count = int(backbone.split()[1].replace(",", ""))
    model = timm.create_model("vit_tiny_patch16_224", **TINY_KWARGS, num_classes=0)
    n = sum(p.numel() for p in model.parameters())
    assert 0.95 * n <= count <= n, backbone  # the served weights (an export folds a few)


def test_inspect_of_a_name_that_cannot_build_shows_what_it_stands_for(capsys):
    """Offline (tests/conftest.py), a hub backbone cannot build: the spec the name stands for
    is still shown, with the one-line error."""
    code, out, err = run(capsys, "inspect", "pathology/owkin_phikon")
    assert code == 2
    assert "pathology/owkin_phikon stands for this spec:" in out
    assert "  source: huggingface\n" in out and "  model_name_or_path: owkin/phikon\n" in out
    (line,) = err.strip().splitlines()
    assert "offline" in line

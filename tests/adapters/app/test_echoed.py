"""What is echoed back (errors) and what is printed or stored of a spec (``inspect``, the
embeddings file, ONNX export metadata): long values shortened, URL credentials hidden.

The Ray manifest's case is in ray/test_engine.py (it needs a local Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import adapters
import specs
from adapters._src.app import cli, store
from adapters._src.runtimes.onnxruntime.export import _metadata
from adapters._src.sources.onnx.metadata import METADATA_SPEC

HUGE = "x" * 5_000_000
TOKEN = "SECRET-TOKEN-1234"
SIG = "SECRET-SIG-5678"
#: a URL that timm keeps in the spec but never opens (pretrained is false)
URL = "https://user:${oc.env:FMA_ECHO_TOKEN}@host.invalid/w.pth?sig=" + SIG + "&v=1"
SHOWN = "https://***@host.invalid/w.pth?sig=***&v=1"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMA_ECHO_TOKEN", TOKEN)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _secret_spec(work: dict, root: Path) -> Path:
    """The `work` fixture's spec with the URL in its model_kwargs (timm's pretrained config)."""
    raw = dict(work["raw"])
    raw["model_kwargs"] = {**raw["model_kwargs"], "pretrained_cfg_overlay": {"url": URL}}
    path = root / "secret.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "spec",
    [specs.RegistrySpec(HUGE), specs.TimmSpec(HUGE, pretrained=False)],
    ids=["registry", "timm"],
)
def test_build_error_echoes_a_huge_model_name_shortly(spec):
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(spec)
    assert "model_name" in str(info.value) and len(str(info.value)) < 1000


def test_build_error_hides_a_token_interpolated_into_a_checkpoint_url():
    spec = specs.structure(
        {
            "source": "timm",
            "model_name": "vit_tiny_patch16_224",
            "pretrained": False,
            "model_kwargs": {"img_size": 32, "depth": 1, "num_classes": 0},
            "checkpoint_path": "https://user:${oc.env:FMA_ECHO_TOKEN}@host.invalid/w.pth",
        }
    )
    assert TOKEN in spec.checkpoint_path  # the spec itself holds what it was given
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(spec)  # offline in the tests: refused before any download
    assert TOKEN not in str(info.value)
    assert "https://***@host.invalid/w.pth" in str(info.value)


def test_cli_error_line_is_short_and_hides_the_token(capsys, tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text(f"source: timm\nmodel_name: {HUGE}\npretrained: false\n")
    code, _, err = run(capsys, "inspect", str(huge), "--device", "cpu")
    assert code == 2 and len(err.strip().splitlines()) == 1 and len(err) < 1000
    secret = tmp_path / "secret.yaml"
    secret.write_text("source: timm\nmodel_name: resnet18\ncheckpoint_path: " + URL + "\n")
    code, _, err = run(capsys, "inspect", str(secret), "--device", "cpu")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert TOKEN not in err and SIG not in err and "https://***@host.invalid" in err


def test_inspect_prints_the_spec_without_credentials(capsys, work, tmp_path):
    code, out, _ = run(capsys, "inspect", str(_secret_spec(work, tmp_path)), "--device", "cpu")
    assert code == 0
    assert TOKEN not in out and SIG not in out
    assert f"url: {SHOWN}" in out


def test_embeddings_file_stores_the_spec_without_credentials(capsys, work, tmp_path):
    out = tmp_path / "e.safetensors"
    spec = _secret_spec(work, tmp_path)
    argv = ["embed", str(spec), "--data", work["images"], "--out", str(out), "--device", "cpu"]
    code, _, _ = run(capsys, *argv)
    assert code == 0
    assert TOKEN.encode() not in out.read_bytes() and SIG.encode() not in out.read_bytes()
    stored = store.load_embeddings(out).metadata["spec"]
    assert yaml.safe_load(stored)["model_kwargs"]["pretrained_cfg_overlay"]["url"] == SHOWN


def test_onnx_export_metadata_stores_the_spec_without_credentials(work, tmp_path):
    backbone = adapters.build(specs.load(_secret_spec(work, tmp_path)))
    assert TOKEN in yaml.safe_dump(specs.unstructure(backbone.spec))
    stored = _metadata(backbone, None)[METADATA_SPEC]
    assert TOKEN not in stored and SIG not in stored
    assert specs.loads(stored).model_kwargs["pretrained_cfg_overlay"]["url"] == SHOWN

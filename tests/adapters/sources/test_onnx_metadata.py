"""Hostile or broken ``fm_adapters.preprocess`` metadata in an ONNX file: read as a spec file is
(bounded depth and size, duplicate keys refused) and checked field by field, so a model whose
metadata would crash the reader or give non-finite embeddings is one `BuildError` naming the
file, and through ``embed model.onnx`` one line on stderr, exit 2, no output file.

The model is a real tiny CNN exported with torch.onnx.export; its ``metadata_props`` are
edited with the onnx package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

import adapters
import specs
from adapters._src.app import cli, store
from adapters._src.sources.onnx.metadata import METADATA_PREPROCESS

VALID = {
    "size": [16, 16],
    "channels": 3,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "origin": "test",
    "crop_mode": "center",
    "pipeline": "pil",
}


def _json(**changes: object) -> str:
    return json.dumps({**VALID, **changes})


#: case -> (the stored text, a fragment of the error)
BROKEN = {
    "deeply nested": ('{"size": ' + "[" * 3000 + "]" * 3000 + "}", "100 levels deep"),
    "std 0": (_json(std=[0, 0, 0]), "std: expected finite numbers > 0"),
    "std NaN": (_json(std=[0.2, 0.2, 0.2]).replace("0.2, 0.2", "NaN, 0.2"), "std: expected"),
    "negative size": (_json(size=[-16, 16]), "size: expected (height, width) of 1 to"),
    "string size": (_json(size="16"), "size: expected (height, width): two integers"),
    "channels and mean disagree": (_json(mean=[0.5, 0.5]), "one per channel (3 channels)"),
    "duplicate key": ('{"size": [16, 16], "size": [64, 64]}', "'size' is given twice"),
    "huge": (_json(origin="x" * 20_000), "at most 10000 characters"),
    "unknown field": (_json(colour="red"), "a JSON object of preprocessing fields"),
}


class TinyCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx_metadata")
    torch.manual_seed(0)
    path = root / "cnn.onnx"
    torch.onnx.export(
        TinyCNN().eval(),
        (torch.randn(2, 3, 16, 16),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        dynamo=True,
        verbose=False,
    )
    images = root / "images" / "a"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return {"model": path, "images": images.parent, "root": root}


def _with_metadata(exported: dict[str, Path], name: str, text: str) -> Path:
    model = onnx.load(str(exported["model"]))
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_PREPROCESS, value=text)
    path = exported["root"] / f"{name.replace(' ', '_')}.onnx"
    onnx.save(model, str(path))
    return path


def test_valid_metadata_is_read(exported):
    path = _with_metadata(exported, "valid", _json())
    pre = adapters.build(specs.OnnxSpec(path=str(path))).info["preprocess"]
    assert pre.size == (16, 16) and pre.std == (0.25, 0.25, 0.25)
    assert pre.origin == "ONNX model metadata (test)"


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_metadata_is_one_build_error_naming_the_file(exported, case):
    text, fragment = BROKEN[case]
    path = _with_metadata(exported, case, text)
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(specs.OnnxSpec(path=str(path)))
    message = str(info.value)
    assert message.startswith("path: ") and str(path) in message
    assert METADATA_PREPROCESS in message and fragment in message, message
    assert len(message) < 1500


@pytest.mark.parametrize("case", ["deeply nested", "std 0", "std NaN", "string size"])
def test_embed_model_onnx_with_broken_metadata_fails_in_one_line(exported, case, capsys):
    path = _with_metadata(exported, case, BROKEN[case][0])
    out = exported["root"] / f"{path.stem}.safetensors"
    code = cli.main(["embed", str(path), "--data", str(exported["images"]), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert METADATA_PREPROCESS in err and "Traceback" not in err
    assert not out.exists()


def test_embed_model_onnx_with_valid_metadata_gives_finite_embeddings(exported, capsys):
    path = _with_metadata(exported, "valid_cli", _json())
    out = exported["root"] / "valid.safetensors"
    code = cli.main(["embed", str(path), "--data", str(exported["images"]), "--out", str(out)])
    capsys.readouterr()
    assert code == 0
    assert np.isfinite(store.load_embeddings(out).embeddings).all()

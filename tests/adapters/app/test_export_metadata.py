"""An exported model keeps its meaning: ``export`` stores the preprocessing and the spec in the
ONNX ``metadata_props``, and ``embed model.onnx`` reads them back, agreeing with
``embed backbone.yaml`` on an image folder (a backbone whose statistics are not ImageNet's)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import onnx
import pytest
from PIL import Image

import adapters
import specs
from adapters._src.app import cli, store
from adapters._src.app.backbone import resolve_preprocess
from adapters._src.sources.onnx.metadata import METADATA_PREPROCESS, METADATA_SPEC


@pytest.fixture(scope="module")
def job(tmp_path_factory, save_tiny_vit) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exported")
    save_tiny_vit(root, "backbone")
    rng = np.random.default_rng(0)
    for c, (w, h) in enumerate([(45, 30), (30, 45), (19, 51)]):
        (root / "images" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            arr = rng.integers(0, 255, (h + i, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / "images" / f"c{c}" / f"{i}.png")
    return {"root": root, "spec": root / "backbone.yaml", "images": root / "images"}


def _embed(spec: Path, job: dict[str, Path], name: str) -> np.ndarray:
    out = job["root"] / name
    argv = ["embed", str(spec), "--data", str(job["images"]), "--out", str(out)]
    assert cli.main([*argv, "--device", "cpu"]) == 0
    return store.load_embeddings(out)


@pytest.mark.slow  # two exports-worth of work: ~10 s on a loaded 2-core machine
def test_embed_exported_onnx_agrees_with_the_spec(job, capsys):
    model = job["root"] / "model.onnx"
    assert cli.main(["export", str(job["spec"]), "--out", str(model)]) == 0
    stored = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert specs.loads(stored[METADATA_SPEC]) == specs.load(job["spec"])
    pre = json.loads(stored[METADATA_PREPROCESS])
    assert pre["mean"] == [0.5, 0.5, 0.5] and pre["size"] == [32, 32]  # not ImageNet's
    from_spec = _embed(job["spec"], job, "a.safetensors")
    from_onnx = _embed(model, job, "b.safetensors")
    capsys.readouterr()
    assert json.loads(from_onnx.metadata["preprocess"])["origin"].startswith("ONNX model metadata")
    assert from_spec.items == from_onnx.items and len(from_spec.items) == 6
    np.testing.assert_allclose(from_onnx.embeddings, from_spec.embeddings, atol=1e-4, rtol=1e-4)
    # the library reads the same back: build_onnx's info, then resolve_preprocess
    served = adapters.build(specs.OnnxSpec(path=str(model)))
    assert served.info["source_spec"] == stored[METADATA_SPEC]
    back = resolve_preprocess(served)
    want = resolve_preprocess(adapters.build(specs.load(job["spec"])))
    assert back.origin == "ONNX model metadata (timm data config)"
    assert attrs.evolve(back, origin=want.origin) == want

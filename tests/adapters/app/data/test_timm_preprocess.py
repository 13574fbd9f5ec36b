"""Image-folder preprocessing of timm-family backbones is timm's own eval transform, bit for
bit, on odd-sized images (timm truncates where a rounding resize would not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import timm.data
import torch
from PIL import Image

import adapters
import specs
from adapters._src.app.backbone import resolve_preprocess
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.data.images import decode_image, preprocess_batch
from adapters._src.app.data.loader import iter_batches
from adapters._src.preprocess import Preprocess

SIZES = [(451, 300), (300, 451), (97, 513), (224, 224)]  # (width, height)
MODELS = {
    "vit": ("vit_tiny_patch16_224", {"depth": 1}),  # bicubic, crop_pct 0.9, mean 0.5
    "resnet": ("resnet18", {}),  # bicubic, crop_pct 0.95, ImageNet mean
}


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("odd")
    (root / "c").mkdir()
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(SIZES):
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).convert("L" if i == 3 else "RGB").save(root / "c" / f"{i}.png")
    return root


@pytest.mark.parametrize("name", list(MODELS))
def test_folder_batches_equal_timms_transform(odd_folder, name):
    model_name, kwargs = MODELS[name]
    backbone = adapters.build(specs.TimmSpec(model_name, pretrained=False, model_kwargs=kwargs))
    pre = resolve_preprocess(backbone)
    assert pre.pipeline == "timm"
    config = timm.data.resolve_model_data_config(backbone.module)
    transform = timm.data.create_transform(**config, is_training=False)
    ds = load_dataset(str(odd_folder))
    x = torch.cat([b[0] for b in iter_batches(ds, pre, 3)])
    want = torch.stack([transform(Image.open(p).convert("RGB")) for p in ds.paths])
    assert x.shape == want.shape == (len(SIZES), 3, 224, 224)
    torch.testing.assert_close(x, want, rtol=0, atol=0)


def test_non_timm_sources_keep_the_pil_pipeline(odd_folder):
    pre = Preprocess(size=(16, 16), interpolation="bilinear", crop_pct=0.8)
    assert pre.pipeline == "pil"
    ds = load_dataset(str(odd_folder))
    x = torch.cat([b[0] for b in iter_batches(ds, pre, 3)])
    want = preprocess_batch(np.stack([decode_image(p, pre) for p in ds.paths]), pre)
    torch.testing.assert_close(x, want, rtol=0, atol=0)

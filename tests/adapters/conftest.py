"""Fixtures shared by the command-line tests (test_cli, test_ray_embed, test_export_metadata)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file

#: the tiny timm ViT of the `work` fixture: 32 px, one block, pooled (1, 192) features
TINY_VIT_KWARGS = {"img_size": 32, "depth": 1, "num_classes": 0}
#: class folders of the `work` image folder, 6 images each (+ one unreadable file in green)
IMAGE_CLASSES = ("red", "green", "blue")
IMAGES_PER_CLASS = 6


def _save_tiny_vit(root: Path, stem: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The tiny timm ViT (``TINY_VIT_KWARGS``, seed 0, eval mode) saved as
    ``root/<stem>.safetensors`` with its spec file ``root/<stem>.yaml``: (model, spec dict)."""
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **TINY_VIT_KWARGS)
    model.eval()
    save_file(model.state_dict(), root / f"{stem}.safetensors")
    spec = {
        "source": "timm",
        "model_name": "vit_tiny_patch16_224",
        "pretrained": False,
        "checkpoint_path": str(root / f"{stem}.safetensors"),
        "model_kwargs": TINY_VIT_KWARGS,
    }
    (root / f"{stem}.yaml").write_text(yaml.safe_dump(spec))
    return model, spec


@pytest.fixture(scope="session")
def save_tiny_vit() -> Callable[[Path, str], tuple[torch.nn.Module, dict[str, Any]]]:
    """``save(root, stem) -> (model, spec)``: the `work` fixture's tiny ViT and spec file,
    written into another folder."""
    return _save_tiny_vit


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny timm ViT saved locally with its spec file (ours and as an eva config), and an
    image folder of 3 classes x 6 PNGs of varying height plus one truncated JPEG.

    One per test module, so a module may write next to it. Keys: ``root`` (the folder, with
    tiny.yaml and eva.yaml), ``spec`` (str path of tiny.yaml), ``raw`` (the spec dict),
    ``model`` (the torch module, eval mode), ``images`` (str path of the image folder).
    """
    root = tmp_path_factory.mktemp("work")
    model, spec = _save_tiny_vit(root, "tiny")
    eva = {k: v for k, v in spec.items() if k != "source"}
    eva_config = {"class_path": "eva.vision.models.wrappers.TimmModel", "init_args": eva}
    (root / "eva.yaml").write_text(yaml.safe_dump({"backbone": eva_config}))
    images = root / "images"
    rng = np.random.default_rng(0)
    for c, name in enumerate(IMAGE_CLASSES):
        (images / name).mkdir(parents=True)
        for i in range(IMAGES_PER_CLASS):
            arr = rng.integers(0, 90, size=(20 + i, 24, 3), dtype=np.uint8)
            arr[..., c] = 230  # the class is the dominant colour
            Image.fromarray(arr).save(images / name / f"{i}.png")
    (images / "green" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return {
        "root": root,
        "spec": str(root / "tiny.yaml"),
        "raw": spec,
        "model": model,
        "images": str(images),
    }

"""``info["input_shape"]`` of torch sources is the shape the model as built takes (the JAX and
ONNX Runtime runtimes trace zeros of it when no example input is given): a timm model built
with ``img_size=`` or ``in_chans=`` reports those, not its pretrained config's defaults."""

from __future__ import annotations

import pytest
import torch

import adapters
import specs

#: (model name, model kwargs, the expected input shape)
CASES = {
    "vit img_size=32": ("vit_tiny_patch16_224", {"img_size": 32, "depth": 1}, (1, 3, 32, 32)),
    "vit img_size=(32, 48) in_chans=1": (
        "vit_tiny_patch16_224",
        {"img_size": (32, 48), "in_chans": 1, "depth": 1},
        (1, 1, 32, 48),
    ),
    "vit as configured": ("vit_tiny_patch16_224", {"depth": 1}, (1, 3, 224, 224)),
    # dynamic_img_size takes any size: the data config's, which preprocessing also uses
    "vit dynamic_img_size": (
        "vit_tiny_patch16_224",
        {"img_size": 32, "depth": 1, "dynamic_img_size": True},
        (1, 3, 224, 224),
    ),
    "resnet in_chans=1": ("resnet18", {"in_chans": 1}, (1, 1, 224, 224)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_timm_input_shape_is_the_models_own(case: str) -> None:
    name, kwargs, want = CASES[case]
    backbone = adapters.build(
        specs.TimmSpec(name, pretrained=False, model_kwargs={**kwargs, "num_classes": 0})
    )
    assert backbone.info["input_shape"] == want
    # the shape the pipeline feeds (preprocessing) and the one the runtimes trace agree
    assert tuple(backbone.info["preprocess"].size) == want[2:]
    out = backbone(torch.randn(2, *want[1:], generator=torch.Generator().manual_seed(0)))
    assert out.shape[0] == 2

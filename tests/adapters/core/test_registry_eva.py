"""eva's TimmModel shape behaviour, through the registry, and equality with timm's
features_only wrapper that eva uses."""

from __future__ import annotations

import pytest
import timm
import torch

import adapters
import specs

NAME = "universal/vit_small_patch16_224_random"


@pytest.mark.parametrize(
    ("out_indices", "size", "shapes"),
    [
        (1, 224, [(2, 384, 14, 14)]),
        (3, 224, [(2, 384, 14, 14)] * 3),
        (1, 512, [(2, 384, 32, 32)]),  # dynamic_img_size=True (the entry's default)
    ],
)
def test_vit_small_feature_maps(out_indices, size, shapes) -> None:
    backbone = adapters.build(specs.RegistrySpec(NAME, model_kwargs={"out_indices": out_indices}))
    maps = backbone(torch.randn(2, 3, size, size))
    assert isinstance(maps, list)
    assert [tuple(m.shape) for m in maps] == shapes


def test_vit_small_without_out_indices_is_the_cls_embedding() -> None:
    backbone = adapters.build(NAME)
    assert tuple(backbone(torch.randn(2, 3, 224, 224)).shape) == (2, 384)


@pytest.mark.parametrize("out_indices", [2, (0, 2)])
def test_out_indices_equal_timm_features_only(out_indices) -> None:
    kwargs = {"img_size": 32, "depth": 3, "num_classes": 0}
    backbone = adapters.build(
        specs.TimmSpec(
            "vit_tiny_patch16_224", pretrained=False, out_indices=out_indices, model_kwargs=kwargs
        )
    )
    features = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        features_only=True,
        out_indices=out_indices if isinstance(out_indices, int) else list(out_indices),
        **kwargs,
    ).eval()
    # features_only prunes the final norm / head; everything else has the same names
    features.model.load_state_dict(backbone.params, strict=False)
    x = torch.randn(2, 3, 32, 32)
    got, want = backbone(x), features(x)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-6)

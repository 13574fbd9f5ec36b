"""Low precision on real weights: the package's ImageNet EfficientNet-Lite0
(``universal/efficientnet_lite0_imagenet``) classifies sklearn's two sample photos as float32
does at every precision each runtime runs, and its digits embeddings stay close to float32's
(the figures: README "Precision")."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_sample_images

import adapters
from adapters._src.app.backbone import resolve_preprocess
from adapters._src.app.data.images import preprocess_batch

NAME = "universal/efficientnet_lite0_imagenet"
LOW = ["bf16-mixed", "16-mixed", "bf16-true", "16-true"]
#: mean cosine of low-precision to float32 digits embeddings: float16 keeps 11 significant
#: bits, bfloat16 8, and the bound says so (the issue's 0.999 holds for float16 only)
MIN_MEAN_COSINE = {"16": 0.999, "bf16": 0.995}


@pytest.fixture(scope="module")
def classifier() -> adapters.Adapter:
    return adapters.build(adapters.registry_spec(NAME, {"num_classes": 1000}))


@pytest.fixture(scope="module")
def photos(classifier) -> tuple[torch.Tensor, list[int]]:
    """flower.jpg and china.jpg as one batch, and their float32 top-1 classes."""
    pre = resolve_preprocess(classifier)
    images = load_sample_images().images
    x = torch.cat([preprocess_batch(i[None].astype(np.float32) / 255.0, pre) for i in images])
    with torch.inference_mode():
        top1 = classifier(x).argmax(-1).tolist()
    return x, top1


def _top1(backbone: adapters.Adapter, x: torch.Tensor) -> list[int]:
    if backbone.framework == "jax":
        y = jax.jit(backbone.forward)(backbone.params, x.numpy())
        return np.asarray(y, np.float32).argmax(-1).tolist()
    with torch.inference_mode():
        return backbone(x).float().argmax(-1).tolist()


@pytest.mark.parametrize(
    ("runtime", "precision"),
    [*(("torch", p) for p in LOW), ("jax", "bf16-true"), ("onnxruntime", "16-true")],
)
def test_the_sample_photos_keep_their_top1_class(classifier, photos, runtime, precision) -> None:
    x, expected = photos
    assert len(set(expected)) == 2  # two photos, two different classes
    backbone = adapters.build(classifier.spec, precision=precision, runtime=runtime)
    assert backbone.spec.precision == precision
    assert _top1(backbone, x) == expected


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """200 sklearn digits (32 px, three channels, TF-style normalised as the entry says) and
    their float32 embeddings."""
    data = load_digits()
    x = torch.from_numpy(data.images[:200].astype(np.float32) / 16.0)[:, None]
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear").repeat(1, 3, 1, 1)
    x = (x - 0.5) / 0.5
    with torch.inference_mode():
        return x, adapters.build(NAME)(x)


@pytest.mark.parametrize("precision", LOW)
def test_digits_embeddings_stay_close_to_float32(digits, precision) -> None:
    x, reference = digits
    # float16 arithmetic is emulated on this CPU (slow): fewer digits for it
    n = len(x) if precision.startswith("bf16") else 48
    with torch.inference_mode():
        low = adapters.build(NAME, precision=precision)(x[:n])
    cosine = torch.nn.functional.cosine_similarity(low.float(), reference[:n], dim=-1)
    bound = MIN_MEAN_COSINE[precision.split("-")[0]]
    assert float(cosine.mean()) >= bound, (cosine.mean(), cosine.min())

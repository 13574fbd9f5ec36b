"""`Preprocess`: how images become a backbone's input, as data.

Each source fills the backbone's own defaults into ``adapter.info["preprocess"]`` at build
time where it knows them (timm's data config, a HuggingFace ``preprocessor_config.json``, an
ONNX input shape); the application (``embed``) reads them from there and applies user overrides.
"""

from __future__ import annotations

from typing import Any

import attrs

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
#: how image files become input: our PIL resize + crop, or timm's own eval transform
PIPELINES = ("pil", "timm")


@attrs.frozen
class Preprocess:
    """How images become backbone input (B, channels, *size).

    Attributes:
        size: (height, width) of the backbone input.
        channels: 1 or 3 (grayscale images are repeated, colour ones averaged).
        mean, std: per-channel normalisation of [0, 1] pixel values.
        interpolation: ``nearest``, ``bilinear`` or ``bicubic``.
        crop_pct: files are resized to ``size / crop_pct`` (shorter side) and centre-cropped;
            in-memory arrays (already framed) are resized straight to ``size``.
        origin: where these values came from (printed for the user).
        crop_mode: timm's ``center``, ``squash`` or ``border`` (the ``timm`` pipeline only).
        pipeline: how image files are decoded: ``pil`` (resize the shorter side to
            ``size / crop_pct``, centre-crop, normalise) or ``timm`` (timm's own eval
            transform, ``timm.data.create_transform``, for timm-family backbones).
    """

    size: tuple[int, int]
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 1.0
    origin: str = "ImageNet defaults"
    crop_mode: str = "center"
    pipeline: str = attrs.field(default="pil", validator=attrs.validators.in_(PIPELINES))

    def describe(self) -> str:
        mean = ", ".join(f"{m:.3f}" for m in self.mean)
        std = ", ".join(f"{s:.3f}" for s in self.std)
        return (
            f"preprocessing ({self.origin}): resize to {self.size[0]}x{self.size[1]} "
            f"({self.interpolation}, crop_pct {self.crop_pct:g}"
            f"{', timm transform' if self.pipeline == 'timm' else ''}), {self.channels} channel(s), "
            f"mean ({mean}), std ({std})"
        )

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

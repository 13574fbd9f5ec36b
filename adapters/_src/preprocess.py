"""`Preprocess`: how images become a backbone's input, as data.

Each source fills the backbone's own defaults into ``adapter.info["preprocess"]`` at build
time where it knows them (timm's data config, a HuggingFace ``preprocessor_config.json``, an
ONNX input shape); the application (``embed``) reads them from there and applies user overrides.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from specs.internal import shorten

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
#: how image files become input: our PIL resize + crop, or timm's own eval transform
PIPELINES = ("pil", "timm")
CROP_MODES = ("center", "squash", "border")
#: the largest input side: 3 x 16384 x 16384 float32 is already 3 GiB for one image
MAX_SIDE = 16_384


class PreprocessError(ValueError):
    """A `Preprocess` field out of range: names the field, what it takes and what it got."""

    def __init__(self, field: str, expected: str, got: Any) -> None:
        self.field = field
        text = shorten(repr(got), 80)
        super().__init__(f"{field}: expected {expected}, got {text} ({type(got).__name__})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_tuple(value: Any) -> Any:
    """Lists (as JSON gives them) become tuples; anything else is left to the validators."""
    return tuple(value) if isinstance(value, list) else value


def _check_size(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    ok = isinstance(value, tuple) and len(value) == 2
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise PreprocessError(attribute.name, "(height, width): two integers", value)
    if not 1 <= min(value) <= max(value) <= MAX_SIDE:
        raise PreprocessError(attribute.name, f"(height, width) of 1 to {MAX_SIDE} pixels", value)


def _check_channels(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PreprocessError(attribute.name, "an integer >= 1", value)


def _check_stats(pre: Any, attribute: attrs.Attribute, value: Any) -> None:
    """mean / std: one finite number per channel (or one for all); std also non-zero, > 0."""
    std = attribute.name == "std"
    what = "finite numbers > 0 (dividing by 0 gives non-finite input)" if std else "finite numbers"
    if not isinstance(value, tuple) or not value or not all(_is_number(v) for v in value):
        raise PreprocessError(attribute.name, f"a list of {what}", value)
    if not all(math.isfinite(v) and (v > 0 or not std) for v in value):
        raise PreprocessError(attribute.name, what, value)
    # images are normalised with the first `channels` values (a grey model may keep
    # ImageNet's three); fewer than that, but more than one, cannot be broadcast
    if 1 < len(value) < pre.channels:
        raise PreprocessError(
            attribute.name, f"1 value or one per channel ({pre.channels} channels)", value
        )


def _check_crop_pct(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise PreprocessError(attribute.name, "a finite number > 0", value)


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise PreprocessError(attribute.name, f"one of {', '.join(choices)}", value)

    return check


def _check_origin(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str):
        raise PreprocessError(attribute.name, "a string", value)


@attrs.frozen
class Preprocess:
    """How images become backbone input (B, channels, *size).

    Every field is checked when a record is made (also by ``attrs.evolve``): a value out of
    range raises `PreprocessError` naming the field, rather than giving non-finite input or a
    backend error later. Lists are taken as tuples.

    Attributes:
        size: (height, width) of the backbone input, positive integers.
        channels: 1 or 3 (grayscale images are repeated, colour ones averaged).
        mean, std: per-channel normalisation of [0, 1] pixel values: finite, std > 0; one
            value for all channels or at least one per channel (extra values are unused).
        interpolation: ``nearest``, ``bilinear`` or ``bicubic``.
        crop_pct: files are resized to ``size / crop_pct`` (shorter side) and centre-cropped;
            in-memory arrays (already framed) are resized straight to ``size``.
        origin: where these values came from (printed for the user).
        crop_mode: timm's ``center``, ``squash`` or ``border`` (the ``timm`` pipeline only).
        pipeline: how image files are decoded: ``pil`` (resize the shorter side to
            ``size / crop_pct``, centre-crop, normalise) or ``timm`` (timm's own eval
            transform, ``timm.data.create_transform``, for timm-family backbones).
    """

    size: tuple[int, int] = attrs.field(converter=_as_tuple, validator=_check_size)
    channels: int = attrs.field(default=3, validator=_check_channels)
    mean: tuple[float, ...] = attrs.field(
        default=IMAGENET_MEAN, converter=_as_tuple, validator=_check_stats
    )
    std: tuple[float, ...] = attrs.field(
        default=IMAGENET_STD, converter=_as_tuple, validator=_check_stats
    )
    interpolation: str = attrs.field(default="bicubic", validator=_one_of(INTERPOLATIONS))
    crop_pct: float = attrs.field(default=1.0, validator=_check_crop_pct)
    origin: str = attrs.field(default="ImageNet defaults", validator=_check_origin)
    crop_mode: str = attrs.field(default="center", validator=_one_of(CROP_MODES))
    pipeline: str = attrs.field(default="pil", validator=_one_of(PIPELINES))

    def describe(self) -> str:
        mean = ", ".join(f"{m:.3f}" for m in self.mean)
        std = ", ".join(f"{s:.3f}" for s in self.std)
        return (
            f"preprocessing ({self.origin}): resize to {self.size[0]}x{self.size[1]} "
            f"({self.interpolation}, crop_pct {self.crop_pct:g}"
            f"{', timm transform' if self.pipeline == 'timm' else ''}), "
            f"{self.channels} channel(s), "
            f"mean ({mean}), std ({std})"
        )

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

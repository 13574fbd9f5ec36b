"""Images -> backbone input: resize, channels and normalisation of a `Preprocess` record, for
in-memory arrays (`preprocess_batch`) and files (`decode_image`), and the raw pixels the
baseline classifier sees (`raw_pixels`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...preprocess import Preprocess

#: the longest side of the raw-pixel images the baseline classifier sees
BASELINE_MAX_SIDE = 32


def preprocess_batch(images: np.ndarray, pre: Preprocess) -> torch.Tensor:
    """In-memory images (B, H, W[, C]) in [0, 1] -> normalised (B, channels, *pre.size)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    # Channels are reduced before resizing and a grey channel is repeated only by the
    # normalisation's broadcast after it: resizing works channel by channel, so the values
    # are the same, and grey images (digits) are resized once instead of three times.
    x = _channels(x, pre.channels)
    if tuple(x.shape[-2:]) != tuple(pre.size):
        mode = pre.interpolation
        kw: dict[str, Any] = (
            {} if mode == "nearest" else {"align_corners": False, "antialias": True}
        )
        x = F.interpolate(x, size=pre.size, mode=mode, **kw)
        if mode == "bicubic":
            x = x.clamp_(0.0, 1.0)  # bicubic overshoots; keep pixel range as PIL would
    return _normalise(x, pre)


def decode_image(path: Path, pre: Preprocess) -> np.ndarray:
    """Read one file with PIL: resize the shorter side to size / crop_pct, centre-crop to
    ``size``; returns (H, W, C) float32 in [0, 1] (not normalised).

    Raises:
        OSError: the file is unreadable, or larger than PIL's decompression-bomb limit
            (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    from PIL import Image

    resample = {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
    }[pre.interpolation]
    with _open_image(path, pre.channels) as img:
        h, w = pre.size
        scale = max(h, w) / pre.crop_pct / min(img.size)
        new = (max(w, round(img.size[0] * scale)), max(h, round(img.size[1] * scale)))
        img = img.resize(new, resample)
        left, top = (new[0] - w) // 2, (new[1] - h) // 2
        img = img.crop((left, top, left + w, top + h))
        arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[..., None] if arr.ndim == 2 else arr


def decode_image_timm(path: Path, pre: Preprocess) -> torch.Tensor:
    """Read one file with PIL and apply timm's own eval transform for ``pre`` (resize,
    crop, to tensor, normalise; see `timm_transform`); returns (channels, H, W) float32.

    Raises:
        OSError: as `decode_image`.
    """
    with _open_image(path, pre.channels) as img:
        return timm_transform(pre)(img)


@functools.lru_cache(maxsize=8)
def timm_transform(pre: Preprocess) -> Callable[[Any], torch.Tensor]:
    """``timm.data.create_transform(**config, is_training=False)`` for the data config ``pre``
    holds (input size, interpolation, mean, std, crop_pct, crop_mode)."""
    from timm.data import create_transform

    return create_transform(
        input_size=(pre.channels, *pre.size),
        interpolation=pre.interpolation,
        mean=pre.mean[: pre.channels],
        std=pre.std[: pre.channels],
        crop_pct=pre.crop_pct,
        crop_mode=pre.crop_mode,
        is_training=False,
    )


@contextlib.contextmanager
def _open_image(path: Path, channels: int) -> Iterator[Any]:
    """A PIL image of ``path`` converted to RGB (3 channels) or L; decompression bombs (PIL's
    error and its warning form) raise ``OSError`` like any unreadable file."""
    from PIL import Image

    try:
        opened = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # warnings-as-errors turns the warning form into an exception too
        raise OSError(f"{err}; it is treated as unreadable") from err
    with opened as img:
        _check_pixels(img, Image.MAX_IMAGE_PIXELS)
        yield img.convert("RGB" if channels == 3 else "L")


def _check_pixels(img: Any, limit: int | None) -> None:
    """Refuse an image over PIL's decompression-bomb limit, warning form included (PIL only
    warns between the limit and twice it, then decodes the whole image anyway)."""
    if limit is not None and img.width * img.height > limit:
        raise OSError(
            f"image of {img.width}x{img.height} = {img.width * img.height} pixels exceeds PIL's "
            f"decompression-bomb limit PIL.Image.MAX_IMAGE_PIXELS = {limit}; it is treated as "
            "unreadable"
        )


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Drop alpha, average colour to grey, or keep the first ``channels``; a single channel
    asked to become several stays single (`_normalise` broadcasts it)."""
    c = x.shape[1]
    if c == 4:  # RGBA: drop alpha
        x, c = x[:, :3], 3
    if c == channels or c == 1:
        return x
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    return x[:, :channels]


def _normalise(x: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """(x - mean) / std per channel -> a new C-contiguous (B, channels, H, W) tensor.

    A one-channel ``x`` is broadcast to ``pre.channels`` by the subtraction. The division runs
    in place on the subtraction's fresh result: one full-size buffer instead of two.
    """
    mean = torch.tensor(pre.mean[: pre.channels], dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(pre.std[: pre.channels], dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean).div_(std).contiguous()


def raw_pixels(ds: Any, max_side: int = BASELINE_MAX_SIDE) -> np.ndarray:
    """(N, features) raw pixels in [0, 1] for the baseline classifier: the images at most
    ``max_side`` pixels on a side (8x8 digits stay 8x8), grayscale, flattened."""
    if ds.images is not None:
        x = torch.from_numpy(ds.images)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)[:, :3].mean(1, keepdim=True)
        h, w = x.shape[-2:]
        if max(h, w) > max_side:
            s = max_side / max(h, w)
            x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
        return x.reshape(len(ds), -1).numpy()
    pre = Preprocess(size=(max_side, max_side), channels=1, mean=(0.0,), std=(1.0,))
    return np.stack([decode_image(p, pre).reshape(-1) for p in ds.paths or ()])

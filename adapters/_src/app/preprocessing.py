"""The preprocessing a job uses: the backbone's own where its source knows it (timm's data
config, a HuggingFace image-processor config, an ONNX input shape), else ImageNet defaults,
with the ``--image-size`` / ``--mean`` / ``--std`` flags applied on top."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..preprocess import MAX_SIDE, Preprocess, PreprocessError
from .errors import EmbedError


def resolve_preprocess(
    adapter: Any,
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Preprocess:
    """The backbone's own preprocessing where known, else ImageNet defaults at 224.

    Reads ``adapter.info["preprocess"]``: a `Preprocess` the source filled in at build time
    (timm's data config, a HuggingFace ``preprocessor_config.json``, an ONNX input shape; see
    ``adapters/_src/sources/``), or a mapping of `Preprocess` fields a user's builder gave.
    ``image_size``, ``mean`` and ``std`` (the ``--image-size``, ``--mean``, ``--std`` flags)
    override what was found.
    """
    pre = _from_info(adapter)
    if pre is None:
        pre = Preprocess(size=(224, 224), origin="ImageNet defaults")
    if image_size is not None:
        if not 1 <= image_size <= MAX_SIDE:
            raise EmbedError(
                f"--image-size: expected an integer from 1 to {MAX_SIDE}, got {image_size}"
            )
        pre = attrs.evolve(
            pre, size=(image_size, image_size), origin=pre.origin + " + --image-size"
        )
    for flag, value in (("mean", mean), ("std", std)):
        if value is None:
            continue
        value = tuple(float(v) for v in value)
        bad = not all(math.isfinite(v) and (flag == "mean" or v > 0) for v in value)
        if len(value) not in (1, pre.channels) or bad:
            raise EmbedError(
                f"--{flag}: expected 1 or {pre.channels} finite numbers (one per channel)"
                f"{', all > 0' if flag == 'std' else ''}, got {list(value)}"
            )
        value = value * pre.channels if len(value) == 1 else value
        pre = attrs.evolve(pre, **{flag: value}, origin=pre.origin + f" + --{flag}")
    return pre


def _from_info(adapter: Any) -> Preprocess | None:
    info = getattr(adapter, "info", None) or {}
    given = info.get("preprocess") if isinstance(info, Mapping) else None
    if isinstance(given, Preprocess):
        return given
    if not isinstance(given, Mapping):
        return None
    fields = {f.name for f in attrs.fields(Preprocess)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if k in fields}
    kwargs.setdefault("origin", "adapter info")
    kwargs.setdefault("size", (224, 224))
    try:
        return Preprocess(**kwargs)
    except PreprocessError as err:
        raise EmbedError(
            f"the backbone's info['preprocess'] (from its source's builder) is not valid "
            f"preprocessing: {err}; fix what the builder puts there"
        ) from None

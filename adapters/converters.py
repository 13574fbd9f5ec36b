"""Checkpoint converters: ``state_dict -> state_dict`` functions a spec names by import path.

A torch-family spec (``ModuleSpec``, ``FunctionSpec``, ``TorchHubSpec``, ``TimmSpec``) with
``checkpoint_converter: adapters.converters.efficientnet_lite0`` runs the function on the
checkpoint after ``checkpoint_prefix`` is stripped and before the strict key check. Any
function of that signature works (``my_package.convert.from_lightning``).

Example:
    >>> spec = specs.TimmSpec("tf_efficientnet_lite0", pretrained=False,
    ...     checkpoint_path="efficientnet-lite0.pth",
    ...     checkpoint_converter="adapters.converters.efficientnet_lite0")
"""

from __future__ import annotations

from ._src.key_maps import (
    LITE0_ARCH_DEF,
    block_positions,
    dinov2_chunked,
    efficientnet_lite0,
    efficientnet_pytorch_to_timm,
    suprem_segresnet,
    suprem_swin_unetr,
    universal_swin_unetr,
)

__all__ = [
    "LITE0_ARCH_DEF",
    "block_positions",
    "dinov2_chunked",
    "efficientnet_lite0",
    "efficientnet_pytorch_to_timm",
    "suprem_segresnet",
    "suprem_swin_unetr",
    "universal_swin_unetr",
]

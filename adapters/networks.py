"""Networks the registry builds that no installed library provides as one class: the 3D
radiology encoders of kaiko-ai/eva's registry, from MONAI blocks (see ``radiology/*``).

Example:
    >>> spec = specs.ModuleSpec("adapters.networks.SwinUNETREncoder", {"feature_size": 48})
    >>> adapters.build(spec)(torch.randn(1, 1, 64, 64, 64)).shape   # pooled multi-scale
"""

from __future__ import annotations

from ._src.networks.radiology import SegResNetEncoder, SwinUNETREncoder

__all__ = ["SegResNetEncoder", "SwinUNETREncoder"]

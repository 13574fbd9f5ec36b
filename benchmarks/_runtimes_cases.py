"""The architectures of the ``runtimes`` suite: every 2-D registry architecture at its real
size, plus ResNet-18, each as a spec that builds here with random weights and no download.

A registry entry that names hub weights (timm's ``hf-hub:``, torch.hub, HuggingFace) stands
for a local equivalent: the entry's own model kwargs and output transforms on the matching
timm architecture (its full depth and width), or its HuggingFace model class on the hub
config's sizes, saved with random weights into the case's temporary directory and built from
there by the HuggingFace source. Entries that share an architecture share a case (the
``entries`` list says which); ``vit_base_patch16_224_dino_1chan`` differs from ViT-B/16 only in
its one-channel stem and is not timed separately.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: the input of every case: batch x 3 x SIZE x SIZE
SIZE = 224
#: ``--quick`` keeps the cases at most this large (millions of parameters)
QUICK_MAX_PARAMS_M = 30.0


@dataclasses.dataclass(frozen=True)
class Case:
    """One architecture: ``make(tmp)`` returns the spec to build (``tmp``: a directory the
    case may write into); ``params_m`` is its nominal size (the row records the built one)."""

    key: str
    label: str
    entries: tuple[str, ...]
    params_m: float
    make: Callable[[Path], Any]
    channels: int = 3
    size: int = SIZE


def _entry(name: str, field: str = "model_kwargs") -> tuple[dict[str, Any], tuple[Any, ...]]:
    """A registry entry's model kwargs (feature-map switch dropped) and transforms."""
    import adapters

    spec = adapters.registry_spec(name)
    kwargs = dict(getattr(spec, field, None) or {})
    kwargs.pop("out_indices", None)
    return kwargs, tuple(spec.transforms)


def registry(name: str) -> Callable[[Path], Any]:
    """A registry entry built as it is (random weights already, nothing to download)."""

    def make(_tmp: Path) -> Any:
        import adapters

        return adapters.registry_spec(name)

    return make


def timm(arch: str, entry: str | None = None, **extra: Any) -> Callable[[Path], Any]:
    """``entry``'s model kwargs and transforms on the timm architecture ``arch`` (random
    weights), ``extra`` kwargs on top; without an entry, ``arch`` as a feature extractor."""

    def make(_tmp: Path) -> Any:
        import specs

        kwargs, transforms = _entry(entry) if entry else ({"num_classes": 0}, ())
        if transforms:  # they pick tokens: every token after the final norm, as the hub's config
            kwargs.update(num_classes=0, global_pool="")
        kwargs.update(extra)
        return specs.TimmSpec(
            model_name=arch, pretrained=False, model_kwargs=kwargs, transforms=transforms
        )

    return make


def local_weights(entry: str) -> Callable[[Path], Any]:
    """A registry entry whose checkpoint is local (a package file): random weights instead,
    its architecture and transforms kept."""

    def make(_tmp: Path) -> Any:
        import attrs

        import adapters

        spec = adapters.registry_spec(entry)
        return attrs.evolve(spec, checkpoint_path=None, checkpoint_sha256=None)

    return make


def hf(entry: str, config: str, model: str, **cfg: Any) -> Callable[[Path], Any]:
    """``entry``'s HuggingFace model class on ``cfg`` with random weights, saved into the
    case's directory and built from there (the entry's transforms kept)."""

    def make(tmp: Path) -> Any:
        import torch
        import transformers

        import specs

        where = tmp / "hf"
        torch.manual_seed(0)
        module = getattr(transformers, model)(getattr(transformers, config)(**cfg))
        module.save_pretrained(where)
        del module
        _, transforms = _entry(entry)
        return specs.HuggingFaceSpec(model_name_or_path=str(where), transforms=transforms)

    return make


_VIT_B = {"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12}
_VIT_L = {"hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24}

CASES: tuple[Case, ...] = (
    Case("vit_tiny", "ViT-tiny/16", ("universal/vit_tiny_patch16_224_random",), 5.7,
         registry("universal/vit_tiny_patch16_224_random")),
    Case("vit_s16", "ViT-S/16",
         ("pathology/kaiko_vits16", "pathology/lunit_vits16",
          "universal/vit_small_patch16_224_dino", "universal/vit_small_patch16_224_random"),
         21.7, registry("universal/vit_small_patch16_224_random")),
    Case("efficientnet_lite0", "EfficientNet-Lite0", ("universal/efficientnet_lite0_imagenet",),
         3.4, local_weights("universal/efficientnet_lite0_imagenet")),
    Case("resnet18", "ResNet-18", (), 11.2, timm("resnet18")),
    Case("vit_s8", "ViT-S/8", ("pathology/kaiko_vits8", "pathology/lunit_vits8"), 21.7,
         timm("vit_small_patch8_224", "pathology/lunit_vits8")),
    Case("vit_b16", "ViT-B/16", ("pathology/kaiko_vitb16",), 85.8,
         timm("vit_base_patch16_224", "pathology/kaiko_vitb16", num_classes=0)),
    Case("vit_b8", "ViT-B/8", ("pathology/kaiko_vitb8",), 85.8,
         timm("vit_base_patch8_224", "pathology/kaiko_vitb8", num_classes=0)),
    Case("vit_b14_reg4_swiglu", "ViT-B/14 reg4 SwiGLU (H0-mini)", ("pathology/bioptimus_h0_mini",),
         71.6, timm("vit_base_patch14_reg4_dinov2", "pathology/bioptimus_h0_mini", img_size=224,
                    num_classes=0)),
    Case("hf_vit_b16", "HF ViT-B/16 (Phikon)", ("pathology/owkin_phikon",), 85.8,
         hf("pathology/owkin_phikon", "ViTConfig", "ViTModel", **_VIT_B, intermediate_size=3072,
            patch_size=16, image_size=224)),
    Case("hf_dinov2_reg_b14", "HF DINOv2-reg B/14 (Hibou-B)", ("pathology/histai_hibou_b",), 86.0,
         hf("pathology/histai_hibou_b", "Dinov2WithRegistersConfig", "Dinov2WithRegistersModel",
            **_VIT_B, num_register_tokens=4, patch_size=14, image_size=224)),
    Case("vit_l14_dinov2", "ViT-L/14 DINOv2 at 224 px", ("pathology/kaiko_vitl14",
         "pathology/hkust_gpfm"), 304.4, timm("vit_large_patch14_dinov2", "pathology/hkust_gpfm")),
    Case("vit_l16", "ViT-L/16 (UNI)", ("pathology/mahmood_uni",), 303.3,
         timm("vit_large_patch16_224", "pathology/mahmood_uni")),
    Case("hf_dinov2_l16", "HF DINOv2 L/16 (Phikon-v2)", ("pathology/owkin_phikon_v2",), 303.3,
         hf("pathology/owkin_phikon_v2", "Dinov2Config", "Dinov2Model", **_VIT_L, patch_size=16,
            image_size=224)),
    Case("hf_dinov2_reg_l14", "HF DINOv2-reg L/14 (Hibou-L)", ("pathology/histai_hibou_l",), 304.4,
         hf("pathology/histai_hibou_l", "Dinov2WithRegistersConfig", "Dinov2WithRegistersModel",
            **_VIT_L, num_register_tokens=4, patch_size=14, image_size=224)),
    Case("vit_h14_virchow2", "ViT-H/14 reg4 SwiGLU (Virchow2)", ("pathology/paige_virchow2",),
         631.2, timm("vit_huge_patch14_224", "pathology/paige_virchow2", reg_tokens=4,
                     mlp_ratio=5.3375, init_values=1e-5, no_embed_class=True, num_classes=0)),
    Case("vit_h14_uni2", "ViT-H/14 reg8 SwiGLU (UNI2-h)", ("pathology/mahmood_uni2_h",), 681.4,
         timm("vit_giant_patch14_224", "pathology/mahmood_uni2_h", num_classes=0)),
    Case("vit_g14_reg4", "ViT-g/14 reg4 (H-optimus-0)", ("pathology/bioptimus_h_optimus_0",),
         1134.8, timm("vit_giant_patch14_reg4_dinov2", "pathology/bioptimus_h_optimus_0",
                      img_size=224)),
    Case("vit_g14_gigapath", "ViT-g/14 DINOv2 (Prov-GigaPath)", ("pathology/prov_gigapath",),
         1134.8, timm("vit_giant_patch14_dinov2", "pathology/prov_gigapath", init_values=1e-5,
                      mlp_ratio=5.33334, img_size=224, num_classes=0)),
    Case("hf_dinov2_g14", "HF DINOv2 g/14 SwiGLU (Midnight)", ("pathology/kaiko_midnight_12k",),
         1136.5, hf("pathology/kaiko_midnight_12k", "Dinov2Config", "Dinov2Model",
                    hidden_size=1536, num_attention_heads=24, num_hidden_layers=40,
                    use_swiglu_ffn=True, patch_size=14, image_size=224)),
)  # fmt: skip


def case(key: str) -> Case:
    """The case named ``key``."""
    for c in CASES:
        if c.key == key:
            return c
    raise KeyError(f"no runtimes case {key!r}; the cases: {', '.join(c.key for c in CASES)}")

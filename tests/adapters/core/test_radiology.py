"""eva's 3D radiology encoders as registry data: the names, the architectures against eva's own
classes on the same random weights (eva is the ``bench`` extra; skipped without it), the
checkpoint converters, and offline builds with random weights."""

from __future__ import annotations

import pytest
import torch

import adapters
import specs
from adapters.converters import suprem_swin_unetr, universal_swin_unetr
from adapters.networks import SegResNetEncoder, SwinUNETREncoder

RADIOLOGY = [
    "radiology/suprem_segresnet",
    "radiology/suprem_swin_unetr",
    "radiology/swin_unetr_encoder",
    "radiology/universal_swinunetr",
    "radiology/voco_b",
    "radiology/voco_h",
    "radiology/voco_l",
]
#: eva 0.4.5's constructor arguments of each SwinUNETR-based entry (feature_size, use_v2)
SWIN_ARGS = {
    "radiology/swin_unetr_encoder": (48, True),
    "radiology/suprem_swin_unetr": (48, False),
    "radiology/universal_swinunetr": (48, False),
    "radiology/voco_b": (48, True),
    "radiology/voco_l": (96, True),
    "radiology/voco_h": (192, True),
}


def eva_radiology():
    return pytest.importorskip("eva.vision.models.networks.backbones.radiology")


def volume(size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 1, size, size, size, generator=torch.Generator().manual_seed(seed))


def test_names_are_evas() -> None:
    assert adapters.list_models("radiology/*") == RADIOLOGY
    assert "segresnet_encoder" in adapters.list_models("segresnet*")
    pytest.importorskip("eva.vision.models.networks.backbones")
    from eva.vision.models.networks.backbones import backbone_registry

    eva_names = {n for n in backbone_registry.entries() if n.startswith("radiology/")}
    assert eva_names == set(RADIOLOGY)


@pytest.mark.parametrize(("name", "args"), SWIN_ARGS.items())
def test_swin_entries_are_evas_architectures(name, args) -> None:
    spec = adapters.registry_spec(name)
    assert isinstance(spec, specs.ModuleSpec)
    assert spec.class_path == "adapters.networks.SwinUNETREncoder"
    feature_size, use_v2 = args
    assert dict(spec.init_args) == {
        "in_channels": 1,
        "feature_size": feature_size,
        "spatial_dims": 3,
        "out_indices": None,
        "use_v2": use_v2,
    }


def _fake_download(monkeypatch, checkpoint: dict) -> None:
    """eva's radiology classes download in __init__: hand them the test's checkpoint."""
    from eva.core.models.wrappers import _utils

    monkeypatch.setattr(_utils, "load_state_dict_from_url", lambda url, **kw: checkpoint)


@pytest.mark.parametrize("out_indices", [None, 2])
def test_suprem_segresnet_equals_evas(tmp_path, monkeypatch, out_indices) -> None:
    """The SuPreM layout ({"net": {"module.<key>": ...}}, decoder included) loads through our
    converter into the same model eva loads it into."""
    radiology = eva_radiology()
    torch.manual_seed(0)
    encoder = SegResNetEncoder().state_dict()
    net = {f"module.{k}": v for k, v in encoder.items()}
    net["module.up_layers.0.0.conv1.conv.weight"] = torch.randn(4, 4, 3, 3, 3)
    checkpoint = {"net": net, "epoch": 3}
    path = tmp_path / "suprem_segresnet.pth"
    torch.save(checkpoint, path)
    kwargs = {"checkpoint_path": str(path), "out_indices": out_indices}
    ours = adapters.build(adapters.registry_spec("radiology/suprem_segresnet", kwargs))
    _fake_download(monkeypatch, checkpoint)
    theirs = radiology.SuPreMSegResNet(out_indices=out_indices).eval()
    x = volume(32)
    with torch.inference_mode():
        expected = theirs(x)
    got = ours(x)
    if out_indices is None:
        assert got.shape == (2, 16 + 32 + 64 + 128)
        got, expected = [got], [expected]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_segresnet_encoder_builds_offline_with_random_weights(monkeypatch) -> None:
    radiology = eva_radiology()
    monkeypatch.setenv("FM_ADAPTERS_OFFLINE", "1")
    torch.manual_seed(1)
    ours = adapters.build("segresnet_encoder")
    theirs = radiology.SegResNetEncoder().eval()
    theirs.load_state_dict(dict(ours.params), strict=True)
    x = volume(16, seed=2)
    with torch.inference_mode():
        expected = theirs(x)
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=0)


def test_pretrained_entries_need_the_network_when_offline(monkeypatch) -> None:
    monkeypatch.setenv("FM_ADAPTERS_OFFLINE", "1")
    with pytest.raises(adapters.BuildError, match=r"checkpoint_path: .* needs a download"):
        adapters.build("radiology/suprem_segresnet")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("use_v2", "embeddings_type"), [(True, "multiscale"), (False, "multiscale"), (True, "head")]
)
def test_swin_unetr_encoder_equals_evas(use_v2, embeddings_type) -> None:
    """The architecture of every SwinUNETR entry, at a small width (the entries' 48-192 build
    54M-510M parameters): same parameter names and outputs as eva's class."""
    radiology = eva_radiology()
    args = {"feature_size": 12, "use_v2": use_v2, "embeddings_type": embeddings_type}
    torch.manual_seed(0)
    ours = adapters.build(specs.ModuleSpec("adapters.networks.SwinUNETREncoder", args))
    theirs = radiology.SwinUNETREncoder(**args).eval()
    theirs.load_state_dict(dict(ours.params), strict=True)
    # the smallest volume whose bottleneck (1/32) keeps 2 voxels for its instance norm
    x = torch.randn(1, 1, 32, 32, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = theirs(x)
    got = ours(x)
    assert got.shape == (
        (1, 12 * (1 + 1 + 2 + 4 + 16)) if embeddings_type == "multiscale" else (1, 192)
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("converter", "after"), [(suprem_swin_unetr, "backbone."), (universal_swin_unetr, "module.")]
)
def test_swin_checkpoint_converters_keep_the_encoder(converter, after) -> None:
    """eva's rule: keys with ``encoder`` or ``swinViT``, cut after the prefix; decoders dropped."""
    torch.manual_seed(0)
    encoder = SwinUNETREncoder(feature_size=12).state_dict()
    full = {f"{after}{k}": v for k, v in encoder.items()}
    full[f"{after}decoder1.conv.weight"] = torch.randn(2)
    full[f"{after}out.conv.weight"] = torch.randn(2)
    converted = converter(full)
    assert list(converted) == list(encoder)
    assert all(converted[k] is full[f"{after}{k}"] for k in encoder)
    with pytest.raises(ValueError, match=rf"has no '{after}' in it"):
        converter({"swinViT.patch_embed.proj.weight": torch.randn(2)})

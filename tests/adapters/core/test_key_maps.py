"""Checkpoint converters: the efficientnet_pytorch layout into timm's EfficientNet through the
real checkpoint path, the DINOv2 chunked layout, ``pkg://`` package resources, and the errors of
a converter that does not fit."""

from __future__ import annotations

import random

import attrs
import pytest
import timm
import torch

import adapters
import specs
from adapters.converters import LITE0_ARCH_DEF, dinov2_chunked, efficientnet_lite0

CONVERTER = "adapters.converters.efficientnet_lite0"


def _bn(name: str, channels: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{name}.weight": torch.randn(channels, generator=g),
        f"{name}.bias": torch.randn(channels, generator=g),
        f"{name}.running_mean": torch.randn(channels, generator=g),
        f"{name}.running_var": torch.rand(channels, generator=g) + 0.5,
        f"{name}.num_batches_tracked": torch.tensor(7),
    }


def efficientnet_pytorch_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random EfficientNet-Lite0 state dict in efficientnet_pytorch's layout, written from the
    block strings (``<type>_r<repeats>_k<kernel>_s<stride>_e<expansion>_c<out>``) the way
    efficientnet_pytorch names its modules: one flat ``_blocks.N`` list, ``_expand_conv`` /
    ``_bn0`` only where the expansion is not 1."""
    g = torch.Generator().manual_seed(seed)
    state = {"_conv_stem.weight": torch.randn(32, 3, 3, 3, generator=g) * 0.3}
    state.update(_bn("_bn0", 32, g))
    chs, n = 32, 0
    for (block,) in LITE0_ARCH_DEF:
        opts = dict((p[0], p[1:]) for p in block.split("_")[1:])
        repeats, kernel, expand, out = (int(opts[k]) for k in ("r", "k", "e", "c"))
        for _ in range(repeats):
            prefix = f"_blocks.{n}"
            mid = chs * expand
            if expand != 1:
                state[f"{prefix}._expand_conv.weight"] = torch.randn(mid, chs, 1, 1, generator=g)
                state.update(_bn(f"{prefix}._bn0", mid, g))
            state[f"{prefix}._depthwise_conv.weight"] = torch.randn(
                mid, 1, kernel, kernel, generator=g
            )
            state.update(_bn(f"{prefix}._bn1", mid, g))
            state[f"{prefix}._project_conv.weight"] = torch.randn(out, mid, 1, 1, generator=g)
            state.update(_bn(f"{prefix}._bn2", out, g))
            chs, n = out, n + 1
    state["_conv_head.weight"] = torch.randn(1280, chs, 1, 1, generator=g) * 0.1
    state.update(_bn("_bn1", 1280, g))
    state["_fc.weight"] = torch.randn(1000, 1280, generator=g) * 0.05
    state["_fc.bias"] = torch.randn(1000, generator=g)
    return state


def shuffled(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same dict with its keys in another order (the converter must not rely on order)."""
    keys = list(state)
    random.Random(0).shuffle(keys)
    return {k: state[k] for k in keys}


@pytest.fixture(scope="module")
def effnet_checkpoint(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    state = efficientnet_pytorch_state()
    path = tmp_path_factory.mktemp("effnet") / "efficientnet-lite0.pth"
    torch.save(shuffled(state), path)
    return str(path), state


def lite0_spec(path: str, **kw) -> specs.TimmSpec:
    return specs.TimmSpec(
        model_name="tf_efficientnet_lite0",
        pretrained=False,
        checkpoint_path=path,
        checkpoint_converter=CONVERTER,
        **kw,
    )


def test_converted_keys_are_timms(effnet_checkpoint) -> None:
    _, state = effnet_checkpoint
    converted = efficientnet_lite0(shuffled(state))
    own = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert set(converted) == set(own)
    for key, value in converted.items():
        assert value.shape == own[key].shape, key
    assert converted["blocks.0.0.conv_pw.weight"] is state["_blocks.0._project_conv.weight"]
    assert converted["blocks.5.3.bn3.bias"] is state["_blocks.14._bn2.bias"]
    assert converted["classifier.weight"] is state["_fc.weight"]


@pytest.mark.parametrize("num_classes", [1000, 0])
def test_checkpoint_path_equals_loading_converted_dict(effnet_checkpoint, num_classes) -> None:
    path, state = effnet_checkpoint
    backbone = adapters.build(lite0_spec(path, model_kwargs={"num_classes": num_classes}))
    direct = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes)
    converted = efficientnet_lite0(state)
    if num_classes == 0:  # a headless model takes the checkpoint without its classifier
        converted = {k: v for k, v in converted.items() if not k.startswith("classifier.")}
    direct.load_state_dict(converted, strict=True)
    direct.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = direct(x)
    got = backbone(x)
    assert got.shape == (2, num_classes or 1280)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_mismatch_is_reported_in_the_models_names(tmp_path) -> None:
    state = efficientnet_pytorch_state()
    del state["_blocks.15._bn2.bias"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(adapters.BuildError, match=r"1 missing key \(blocks\.6\.0\.bn3\.bias\)"):
        adapters.build(lite0_spec(str(path)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"_blocks.16._bn1.weight": torch.ones(1)}, r"names block 16, but the architecture has 16"),
        (
            {"_blocks.0._expand_conv.weight": torch.ones(1)},
            r"'ds' block .* no layer '_expand_conv'",
        ),
        ({"head.fc.weight": torch.ones(1)}, r"unexpected key 'head\.fc\.weight'"),
    ],
)
def test_foreign_key_names_the_key(tmp_path, extra, message) -> None:
    path = tmp_path / "bad.pth"
    torch.save({**efficientnet_pytorch_state(), **extra}, path)
    with pytest.raises(adapters.BuildError, match=r"checkpoint_converter: .*" + message):
        adapters.build(lite0_spec(str(path)))


def _returns_list(state):
    return list(state.items())


def _raises(state):
    raise KeyError("weight")


@pytest.mark.parametrize(
    ("converter", "message"),
    [
        (f"{__name__}._returns_list", r"returned list, not a state dict"),
        (f"{__name__}._raises", r"_raises failed on checkpoint .*'weight'"),
        ("torch.nn.nothing_here", r"'torch\.nn' has no attribute 'nothing_here'"),
        ("math.pi", r"'math\.pi' is not callable"),
    ],
)
def test_bad_converter(tmp_path, converter, message) -> None:
    path = tmp_path / "lin.pt"
    torch.save({"weight": torch.randn(3, 6), "bias": torch.randn(3)}, path)
    spec = specs.ModuleSpec(
        class_path="torch.nn.Linear",
        init_args={"in_features": 6, "out_features": 3},
        checkpoint_path=str(path),
        checkpoint_converter=converter,
    )
    with pytest.raises(adapters.BuildError, match=r"^checkpoint_converter: .*" + message):
        adapters.build(spec)


def test_converter_runs_after_prefix_on_every_torch_source(tmp_path) -> None:
    """ModuleSpec and FunctionSpec too: prefix stripped first, then the converter."""
    weight, bias = torch.randn(3, 6), torch.randn(3)
    path = tmp_path / "lin.pt"
    torch.save({"model.w": weight, "model.b": bias}, path)
    common = {
        "checkpoint_path": str(path),
        "checkpoint_prefix": "model.",
        "checkpoint_converter": f"{__name__}.rename_wb",
    }
    for spec in (
        specs.ModuleSpec("torch.nn.Linear", {"in_features": 6, "out_features": 3}, **common),
        specs.FunctionSpec("torch.nn.Linear", {"in_features": 6, "out_features": 3}, **common),
    ):
        backbone = adapters.build(spec)
        x = torch.randn(2, 6)
        torch.testing.assert_close(backbone(x), x @ weight.T + bias, rtol=0, atol=1e-6)


def rename_wb(state):
    return {{"w": "weight", "b": "bias"}[k]: v for k, v in state.items()}


def test_dinov2_chunked() -> None:
    a, b, c = torch.randn(2), torch.randn(2), torch.randn(2)
    state = {
        "blocks.0.0.norm1.weight": a,
        "blocks.1.5.attn.qkv.bias": b,
        "blocks.5.mlp.fc1.weight": c,
        "mask_token": torch.randn(1, 4),
        "dino_head.mlp.0.weight": torch.randn(2),
        "cls_token": a,
    }
    out = dinov2_chunked(state)
    assert list(out) == [
        "blocks.0.norm1.weight",
        "blocks.5.attn.qkv.bias",
        "blocks.5.mlp.fc1.weight",
        "cls_token",
    ]
    assert out["blocks.5.attn.qkv.bias"] is b


def test_package_resource_checkpoint(tmp_path, monkeypatch) -> None:
    """``pkg://package/file`` reads a file installed inside an importable package."""
    package = tmp_path / "fm_test_weights_pkg"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    weight, bias = torch.randn(3, 6), torch.randn(3)
    torch.save({"weight": weight, "bias": bias}, package / "weights" / "lin.pt")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = specs.ModuleSpec(
        "torch.nn.Linear",
        {"in_features": 6, "out_features": 3},
        checkpoint_path="pkg://fm_test_weights_pkg/weights/lin.pt",
    )
    backbone = adapters.build(spec)
    torch.testing.assert_close(backbone.params["weight"], weight, rtol=0, atol=0)
    other = attrs.evolve(spec, checkpoint_path="pkg://fm_test_weights_pkg/weights/other.pt")
    with pytest.raises(adapters.BuildError, match=r"has no file 'weights/other\.pt'"):
        adapters.build(other)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "pkg://no_such_package_xyz/w.pt",
            r"names the package 'no_such_package_xyz', which is not installed",
        ),
        ("pkg://torch", r"is not a package resource reference"),
    ],
)
def test_package_resource_errors(path, message) -> None:
    spec = specs.ModuleSpec(
        "torch.nn.Linear", {"in_features": 6, "out_features": 3}, checkpoint_path=path
    )
    with pytest.raises(adapters.BuildError, match=r"^checkpoint_path: .*" + message):
        adapters.build(spec)


def test_gpfm_layout_loads_as_eva_converts_it(tmp_path) -> None:
    """eva's pathology/hkust_gpfm layout ({"teacher": {"backbone.blocks.C.N...", mask_token,
    dino_head}}) through checkpoint_prefix + dinov2_chunked: the dict eva's own conversion gives,
    loaded strictly into the timm ViT."""
    kwargs = {"depth": 4, "img_size": 32, "num_classes": 0}
    torch.manual_seed(0)
    state = timm.create_model("vit_tiny_patch16_224", pretrained=False, **kwargs).state_dict()
    chunked = {
        (
            f"blocks.{int(k.split('.')[1]) // 2}.{k[len('blocks.') :]}"
            if k.startswith("blocks.")
            else k
        ): v
        for k, v in state.items()
    }
    teacher = {f"backbone.{k}": v for k, v in chunked.items()}
    teacher["backbone.mask_token"] = torch.randn(1, 192)
    teacher["dino_head.mlp.0.weight"] = torch.randn(8, 192)
    path = tmp_path / "GPFM.pth"
    torch.save({"teacher": teacher, "student": {"x": torch.ones(1)}}, path)
    spec = specs.TimmSpec(
        "vit_tiny_patch16_224",
        pretrained=False,
        checkpoint_path=str(path),
        checkpoint_prefix="backbone.",
        checkpoint_converter="adapters.converters.dinov2_chunked",
        model_kwargs=kwargs,
    )
    backbone = adapters.build(spec)
    for key, value in state.items():
        torch.testing.assert_close(backbone.params[key], value, rtol=0, atol=0)
    hkust = pytest.importorskip("eva.vision.models.networks.backbones.pathology.hkust")
    ours = dinov2_chunked({k.removeprefix("backbone."): v for k, v in teacher.items()})
    assert ours == hkust._convert_state_dict(dict(teacher))

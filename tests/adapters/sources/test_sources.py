"""Every source built from a tiny real model equals the plain framework call (1e-6)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import timm
import torch
import transformers

import adapters
import specs

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def fresh_like(module_fn, params):
    """The plain framework model with the adapter's weights, in eval mode."""
    module = module_fn()
    module.load_state_dict(params)
    return module.eval()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    """A tiny HuggingFace ViT (hidden 32, image 30, patch 2) saved with save_pretrained."""
    path = tmp_path_factory.mktemp("hf_vit")
    config = transformers.ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=30,
        patch_size=2,
    )
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(path)
    return path


HUBCONF = '''
import torch
from timm.models.vision_transformer import VisionTransformer

dependencies = ["torch", "timm"]


def tiny_vit(pretrained=False, **kwargs):
    """A tiny timm ViT (has get_intermediate_layers)."""
    torch.manual_seed(1)
    args = dict(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, num_classes=0)
    args.update(kwargs)
    return VisionTransformer(**args)


def tiny_mlp(pretrained=False):
    """A model without get_intermediate_layers."""
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 4))
'''


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hub")
    (path / "hubconf.py").write_text(textwrap.dedent(HUBCONF))
    return path


def x_image(batch: int = 2, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


# (id, spec, plain model factory given the adapter) -- the "plain framework call" side builds
# the same architecture independently and loads the adapter's params into it
TORCH_CASES = [
    (
        "module",
        specs.ModuleSpec(
            class_path="timm.models.vision_transformer.VisionTransformer",
            init_args={**TINY_VIT, "num_classes": 5},
        ),
        lambda: timm.models.vision_transformer.VisionTransformer(**TINY_VIT, num_classes=5),
    ),
    (
        "function",
        specs.FunctionSpec(
            path="timm.create_model",
            arguments={"model_name": "resnet10t", "num_classes": 0},
        ),
        lambda: timm.create_model("resnet10t", num_classes=0),
    ),
    (
        "timm",
        specs.TimmSpec(
            model_name="vit_tiny_patch16_224",
            pretrained=False,
            model_kwargs={"img_size": 32, "num_classes": 0, "depth": 2},
        ),
        lambda: timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=0, depth=2),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "plain"), [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES]
)
def test_torch_source_matches_plain_call(spec, plain) -> None:
    backbone = adapters.build(spec)
    x = x_image()
    reference = fresh_like(plain, backbone.params)(x)
    assert backbone.framework == "torch"
    assert set(backbone.params) == set(backbone.module.state_dict())
    torch.testing.assert_close(backbone.forward(backbone.params, x), reference, rtol=0, atol=1e-6)
    torch.testing.assert_close(backbone(x), reference, rtol=0, atol=1e-6)


def test_params_share_memory_with_module() -> None:
    backbone = adapters.build(TORCH_CASES[0][1])
    own = backbone.module.state_dict()
    for name, tensor in backbone.params.items():
        assert tensor.data_ptr() == own[name].data_ptr(), name
        assert not tensor.requires_grad


def test_dict_spec_goes_through_specs_structure() -> None:
    backbone = adapters.build(
        {
            "source": "module",
            "class_path": "torch.nn.Linear",
            "init_args": {"in_features": 4, "out_features": 2},
        }
    )
    x = torch.randn(3, 4)
    plain = fresh_like(lambda: torch.nn.Linear(4, 2), backbone.params)
    torch.testing.assert_close(backbone(x), plain(x), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# HuggingFace (eva's HuggingFaceModel test shapes)
# ------------------------------------------------------------------------------------------

HF_CASES = [
    ("raw", (), None),
    ("hidden", (specs.HiddenState(),), (16, 226, 32)),
    ("cls", (specs.HiddenState(), specs.ClsToken()), (16, 32)),
    ("cls_mean", (specs.HiddenState(), specs.ClsToken(include_patch_mean=True)), (16, 64)),
    ("cls_direct", (specs.ClsToken(),), (16, 32)),
]


@pytest.mark.parametrize(
    ("transforms", "shape"), [c[1:] for c in HF_CASES], ids=[c[0] for c in HF_CASES]
)
def test_huggingface_matches_plain_call(hf_dir, transforms, shape) -> None:
    backbone = adapters.build(
        specs.HuggingFaceSpec(model_name_or_path=str(hf_dir), transforms=transforms)
    )
    x = x_image(batch=16, size=30)
    plain = transformers.ViTModel.from_pretrained(hf_dir).eval()
    hidden = plain(x).last_hidden_state
    out = backbone(x)
    if shape is None:  # the model output object reaches the caller unchanged
        assert isinstance(out, transformers.utils.ModelOutput)
        assert out.last_hidden_state.shape == (16, 226, 32)
        torch.testing.assert_close(out.last_hidden_state, hidden, rtol=0, atol=1e-6)
        return
    assert tuple(out.shape) == shape
    expected = {
        3: hidden,
        2: hidden[:, 0] if shape[1] == 32 else torch.cat([hidden[:, 0], hidden[:, 1:].mean(1)], -1),
    }[len(shape)]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# torch.hub, local source, offline
# ------------------------------------------------------------------------------------------


def test_torch_hub_local_matches_plain_call(hub_dir) -> None:
    spec = specs.TorchHubSpec(
        repo_or_dir=str(hub_dir), model_name="tiny_vit", source="local", pretrained=False
    )
    backbone = adapters.build(spec)
    plain = torch.hub.load(str(hub_dir), "tiny_vit", source="local", trust_repo=True).eval()
    plain.load_state_dict(backbone.params)
    x = x_image()
    torch.testing.assert_close(backbone(x), plain(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("out_indices", "norm", "count"), [(1, False, 1), (2, True, 2), ((0, 2), False, 2)]
)
def test_torch_hub_out_indices_are_intermediate_layers(hub_dir, out_indices, norm, count) -> None:
    spec = specs.TorchHubSpec(
        repo_or_dir=str(hub_dir),
        model_name="tiny_vit",
        source="local",
        pretrained=False,
        out_indices=out_indices,
        norm=norm,
    )
    backbone = adapters.build(spec)
    x = x_image()
    maps = backbone(x)
    assert isinstance(maps, list) and len(maps) == count
    assert all(tuple(m.shape) == (2, 32, 4, 4) for m in maps)
    n = out_indices if isinstance(out_indices, int) else list(out_indices)
    expected = backbone.module.get_intermediate_layers(x, n, reshape=True, norm=norm)
    for got, want in zip(maps, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Flax and custom loaders (modules written to a temporary importable package)
# ------------------------------------------------------------------------------------------

USERLIB = """
import flax.linen as nn
import torch


class TinyFlax(nn.Module):
    features: int = 4

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.features)(x.reshape(x.shape[0], -1))


def load_linear(dim: int = 4):
    torch.manual_seed(0)
    return torch.nn.Linear(dim, 3)


def load_weights(dim: int = 4):
    torch.manual_seed(0)
    return {"w": torch.randn(dim, 3), "b": torch.randn(3)}


def affine(params, x):
    return x @ params["w"] + params["b"]


def load_adapter(dim: int = 4):
    import adapters

    return adapters.Adapter(forward=affine, params=load_weights(dim), spec=None)
"""


@pytest.fixture(scope="module")
def userlib(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("userlib")
    (path / "fm_userlib.py").write_text(textwrap.dedent(USERLIB))
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(path))
    yield "fm_userlib"
    mp.undo()


@pytest.mark.slow
def test_flax_matches_module_apply(userlib) -> None:
    import fm_userlib

    spec = specs.FlaxSpec(
        module=f"{userlib}.TinyFlax", init_args={"features": 5}, input_shape=(1, 3, 4, 4), seed=3
    )
    backbone = adapters.build(spec)
    module = fm_userlib.TinyFlax(features=5)
    params = module.init(jax.random.PRNGKey(3), jnp.zeros((1, 3, 4, 4)))
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 4, 4))
    assert backbone.framework == "jax"
    np.testing.assert_allclose(backbone(x), module.apply(params, x), atol=1e-6, rtol=0)
    other = jax.tree_util.tree_map(lambda a: a + 1.0, backbone.params)
    np.testing.assert_allclose(
        jax.jit(backbone.forward)(other, x), module.apply(other, x), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("suffix", ["msgpack", "safetensors"])
def test_flax_checkpoint_round_trip(userlib, tmp_path, suffix) -> None:
    import flax.serialization
    import flax.traverse_util
    from safetensors.numpy import save_file

    spec = specs.FlaxSpec(module=f"{userlib}.TinyFlax", input_shape=(1, 3, 4, 4), seed=7)
    params = jax.tree_util.tree_map(lambda a: a * 2.0 + 1.0, adapters.build(spec).params)
    path = tmp_path / f"params.{suffix}"
    if suffix == "msgpack":
        path.write_bytes(flax.serialization.to_bytes(params))
    else:
        flat = {
            "/".join(k): np.asarray(v) for k, v in flax.traverse_util.flatten_dict(params).items()
        }
        save_file(flat, str(path))
    restored = adapters.build(
        specs.FlaxSpec(module=spec.module, input_shape=(1, 3, 4, 4), checkpoint_path=str(path))
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(restored.params), jax.tree_util.tree_leaves(params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_custom_loader_returning_module(userlib) -> None:
    backbone = adapters.build(specs.CustomSpec(load=f"{userlib}.load_linear", arguments={"dim": 6}))
    plain = fresh_like(lambda: torch.nn.Linear(6, 3), backbone.params)
    x = torch.randn(5, 6)
    torch.testing.assert_close(backbone(x), plain(x), rtol=0, atol=1e-6)


def test_custom_loader_with_pure_forward(userlib) -> None:
    spec = specs.CustomSpec(
        load=f"{userlib}.load_weights",
        forward=f"{userlib}.affine",
        transforms=(specs.L2Normalize(),),
    )
    backbone = adapters.build(spec)
    x = torch.randn(5, 4)
    raw = x @ backbone.params["w"] + backbone.params["b"]
    torch.testing.assert_close(backbone(x), raw / raw.norm(dim=-1, keepdim=True), rtol=0, atol=1e-6)
    assert backbone.framework == "torch" and backbone.spec == spec


def test_custom_loader_returning_adapter(userlib) -> None:
    backbone = adapters.build(specs.CustomSpec(load=f"{userlib}.load_adapter"))
    x = torch.randn(2, 4)
    torch.testing.assert_close(backbone(x), x @ backbone.params["w"] + backbone.params["b"])

"""Every bad input of the issue gives one clear BuildError naming the field; nothing waits
on a network (HF_HUB_OFFLINE=1 is set by tests/conftest.py)."""

from __future__ import annotations

import re
import textwrap

import attrs
import pytest
import torch

import adapters
import specs
from adapters import Adapter, BuildError

LINEAR = "torch.nn.Linear"

CASES = [
    # unimportable paths
    (
        "no-package",
        specs.ModuleSpec(class_path="no_such_package.Model"),
        r"^class_path: cannot import 'no_such_package\.Model'",
    ),
    (
        "typo",
        specs.ModuleSpec(class_path="torch.nn.Linearr"),
        r"^class_path: 'torch\.nn' has no attribute 'Linearr'.*Did you mean 'Linear'",
    ),
    (
        "function-typo",
        specs.FunctionSpec(path="timm.create_modell"),
        r"^path: 'timm' has no attribute 'create_modell'",
    ),
    # wrong arguments
    (
        "bad-init-arg",
        specs.ModuleSpec(
            class_path=LINEAR, init_args={"in_features": 2, "out_features": 2, "bias_": True}
        ),
        r"^init_args\.bias_: torch\.nn\.Linear takes no argument 'bias_'.*Valid arguments: in_features, out_features, bias",
    ),
    (
        "missing-init-arg",
        specs.ModuleSpec(class_path=LINEAR, init_args={"in_features": 2}),
        r"^init_args: wrong arguments for torch\.nn\.Linear: missing a required argument: 'out_features'",
    ),
    (
        "bad-factory-arg",
        specs.FunctionSpec(
            path="timm.create_model", arguments={"model_name": "resnet10t", "bogus_arg": 1}
        ),
        r"^arguments: timm\.create_model rejected its arguments: .*bogus_arg",
    ),
    (
        "not-a-module",
        specs.FunctionSpec(path="torch.zeros", arguments={"size": [2]}),
        r"^path: torch\.zeros returned Tensor, not a torch\.nn\.Module",
    ),
    (
        "bad-timm-kwarg",
        specs.TimmSpec("resnet10t", pretrained=False, model_kwargs={"bogus_arg": 1}),
        r"^model_kwargs: timm\.create_model rejected its arguments",
    ),
    (
        "timm-name",
        specs.TimmSpec("vit_tiny_patch16_2244", pretrained=False),
        r"^model_name: timm has no model 'vit_tiny_patch16_2244'.*vit_tiny_patch16_224",
    ),
    (
        "timm-no-intermediates",
        specs.TimmSpec("vit_tiny_patch16_224", pretrained=False, model_kwargs={"pretrained": True}),
        r"^model_kwargs\.pretrained: 'pretrained' is a field of the timm spec",
    ),
    # missing / non-fitting checkpoints
    (
        "missing-checkpoint",
        specs.ModuleSpec(
            class_path=LINEAR,
            init_args={"in_features": 2, "out_features": 2},
            checkpoint_path="/nonexistent/w.pt",
        ),
        r"^checkpoint_path: checkpoint file '/nonexistent/w\.pt' does not exist",
    ),
    # HuggingFace paths
    (
        "hf-missing-dir",
        specs.HuggingFaceSpec(model_name_or_path="/nonexistent/hf_model"),
        r"^model_name_or_path: local HuggingFace model directory '/nonexistent/hf_model' does not exist",
    ),
    (
        "hf-relative-dir",
        specs.HuggingFaceSpec(model_name_or_path="./no/such/dir"),
        r"^model_name_or_path: local HuggingFace model directory",
    ),
    # offline: pretrained weights, hub repos
    (
        "timm-offline",
        specs.TimmSpec("vit_tiny_patch16_224.augreg_in21k", pretrained=True),
        r"^pretrained: pretrained weights for .* this process is offline",
    ),
    (
        "hf-offline",
        specs.HuggingFaceSpec(model_name_or_path="owkin/phikon"),
        r"^model_name_or_path: hub model 'owkin/phikon' is not in the local HuggingFace cache and this process is offline",
    ),
    (
        "hub-offline",
        specs.TorchHubSpec(repo_or_dir="facebookresearch/dino:main", model_name="dino_vits16"),
        r"^repo_or_dir: torch\.hub repository .* this process is offline",
    ),
    (
        "registry-offline",
        "pathology/paige_virchow2",
        r"^pretrained: pretrained weights for 'hf-hub:paige-ai/Virchow2'",
    ),
    (
        "registry-unknown",
        "pathology/no_such_model",
        r"^model_name: unknown registry name 'pathology/no_such_model'",
    ),
    # a custom loader without forward
    (
        "custom-no-forward",
        specs.CustomSpec(load="torch.zeros", arguments={"size": [2]}),
        r"^forward: loader 'torch\.zeros' returned Tensor, which needs a forward",
    ),
]


@pytest.mark.parametrize(("spec", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_error(spec, pattern) -> None:
    with pytest.raises(BuildError, match=pattern):
        adapters.build(spec)


def test_build_error_is_a_value_error_with_field() -> None:
    with pytest.raises(ValueError) as info:
        adapters.build(specs.ModuleSpec(class_path="torch.nn.Linearr"))
    assert isinstance(info.value, BuildError) and info.value.field == "class_path"


@pytest.fixture
def hub_dir(tmp_path):
    (tmp_path / "hubconf.py").write_text(
        textwrap.dedent("""
        import torch
        dependencies = ["torch"]

        def mlp(pretrained=False):
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    """)
    )
    return tmp_path


def test_torch_hub_errors(hub_dir, tmp_path_factory) -> None:
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(
        BuildError, match=r"^repo_or_dir: local hub directory .* has no hubconf\.py"
    ):
        adapters.build(specs.TorchHubSpec(repo_or_dir=str(empty), model_name="mlp", source="local"))
    with pytest.raises(
        BuildError, match=r"^model_name: .* has no hub entrypoint 'mlpp'.*Available: mlp"
    ):
        adapters.build(
            specs.TorchHubSpec(repo_or_dir=str(hub_dir), model_name="mlpp", source="local")
        )
    with pytest.raises(
        BuildError,
        match=r"^out_indices: hub model 'mlp' \(Sequential\) has no get_intermediate_layers",
    ):
        adapters.build(
            specs.TorchHubSpec(
                repo_or_dir=str(hub_dir), model_name="mlp", source="local", out_indices=1
            )
        )
    with pytest.raises(
        BuildError, match=r"^model_kwargs: hub entrypoint 'mlp' rejected its arguments"
    ):
        adapters.build(
            specs.TorchHubSpec(
                repo_or_dir=str(hub_dir),
                model_name="mlp",
                source="local",
                model_kwargs={"width": 3},
            )
        )


def test_hf_directory_without_config(tmp_path) -> None:
    with pytest.raises(
        BuildError, match=r"^model_name_or_path: local directory .* has no config\.json"
    ):
        adapters.build(specs.HuggingFaceSpec(model_name_or_path=str(tmp_path)))


def test_unknown_runtime_and_spec_type() -> None:
    with pytest.raises(
        BuildError,
        match=r"^runtime: unknown runtime 'tensorrt'.*Expected one of torch, onnxruntime",
    ):
        adapters.build("universal/vit_tiny_patch16_224_random", runtime="tensorrt")
    with pytest.raises(BuildError, match=r"^spec: no builder for int.*register_source"):
        adapters.build(42)


@attrs.frozen
class ScaleSpec:
    """A new kind of source: multiply by a constant."""

    factor: float
    transforms: tuple = ()


def build_scale(spec: ScaleSpec) -> Adapter:
    return Adapter(
        forward=lambda p, x: p["factor"] * x,
        params={"factor": torch.tensor(spec.factor)},
        spec=spec,
    )


def test_register_source() -> None:
    adapters.register_source(ScaleSpec, build_scale)
    backbone = adapters.build(ScaleSpec(3.0))
    torch.testing.assert_close(backbone(torch.ones(2)), torch.full((2,), 3.0))
    torch.testing.assert_close(
        backbone.forward({"factor": torch.tensor(-1.0)}, torch.ones(2)), -torch.ones(2)
    )
    with pytest.raises(ValueError, match=r"ScaleSpec already has a builder\. Pass overwrite=True"):
        adapters.register_source(ScaleSpec, build_scale)
    adapters.register_source(ScaleSpec, lambda s: "not an adapter", overwrite=True)
    with pytest.raises(BuildError, match=r"returned str, not an adapters\.Adapter"):
        adapters.build(ScaleSpec(1.0))
    with pytest.raises(TypeError, match="spec_type must be a class"):
        adapters.register_source("ScaleSpec", build_scale)
    with pytest.raises(TypeError, match="builder must be callable"):
        adapters.register_source(ScaleSpec, None, overwrite=True)


def test_unresolvable_hub_counts_as_offline_without_the_flag(monkeypatch) -> None:
    """Without HF_HUB_OFFLINE, a hub that does not resolve fails with the offline message at once
    (huggingface_hub itself would retry for ~30 s and then say something else)."""
    from adapters._src import offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FM_ADAPTERS_OFFLINE", raising=False)
    monkeypatch.setattr(offline, "_PROBE_HOST", "no-such-host.invalid")
    offline._hub_unreachable.cache_clear()
    try:
        with pytest.raises(adapters.BuildError, match=r"this process is offline"):
            adapters.build(specs.HuggingFaceSpec("owkin/phikon"))
    finally:
        offline._hub_unreachable.cache_clear()


def test_an_offline_torch_hub_repository_names_github_and_the_yaml_key(monkeypatch, tmp_path):
    """The repository comes from GitHub (not huggingface.co), and in YAML the record's
    ``source`` field is ``hub_source`` (``source:`` is the record tag)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch.hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = specs.TorchHubSpec(repo_or_dir="facebookresearch/dino:main", model_name="dino_vits16")
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(spec)
    message = str(info.value)
    assert "'facebookresearch/dino:main' (GitHub)" in message
    assert "offline (HF_HUB_OFFLINE=1 is set)" in message and "huggingface.co" not in message
    assert "git clone https://github.com/facebookresearch/dino)" in message
    assert "hub_source: local" in message and not re.search(r"(?<!hub_)source: local", message)
    # the YAML the message suggests loads, and names a local hub directory
    local = specs.loads(
        f"source: torch_hub\nhub_source: local\nrepo_or_dir: {tmp_path}\nmodel_name: m\n"
    )
    assert local.source == "local"


ARGUMENT_CASES = {
    "module-init-arg": (
        specs.ModuleSpec(
            class_path=LINEAR, init_args={"in_features": 2, "out_features": 2, "bias_": True}
        ),
        "init_args.bias_",
    ),
    "module-missing-arg": (
        specs.ModuleSpec(class_path=LINEAR, init_args={"in_features": 2}),
        "init_args",
    ),
    "function-arg": (
        specs.FunctionSpec(
            path="timm.create_model", arguments={"model_name": "resnet10t", "bogus_arg": 1}
        ),
        "arguments",
    ),
}


@pytest.mark.parametrize("name", sorted(ARGUMENT_CASES))
def test_bad_factory_argument_is_also_a_type_error(name) -> None:
    """eva raises TypeError here; code catching TypeError must keep working."""
    spec, field = ARGUMENT_CASES[name]
    with pytest.raises(TypeError) as info:
        adapters.build(spec)
    assert isinstance(info.value, adapters.ArgumentError)
    assert isinstance(info.value, BuildError) and isinstance(info.value, ValueError)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")

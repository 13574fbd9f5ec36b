"""eva configs (class_path + init_args) load to the same records as our own format."""

from __future__ import annotations

from pathlib import Path

import pytest

import specs
from specs import (
    AsDiscrete,
    ClsToken,
    FunctionSpec,
    HuggingFaceSpec,
    ModuleSpec,
    OnnxSpec,
    PatchGrid,
    RegistrySpec,
    TimmSpec,
    TorchHubSpec,
)

CONFIGS = Path(__file__).parent / "configs"

# every case of eva's "Model Wrappers" documentation page, plus TorchHubModel and env defaults
DOC_CASES = {
    "registry": RegistrySpec(
        "universal/vit_small_patch16_224_imagenet", model_kwargs={"out_indices": 1}
    ),
    "module": ModuleSpec("path.to.your.ModelClass", init_args={"arg_1": 1, "arg_2": ["a", "b"]}),
    "function_torch_hub": FunctionSpec(
        "torch.hub.load",
        arguments={
            "repo_or_dir": "facebookresearch/dino:main",
            "model": "dino_vits16",
            "pretrained": False,
        },
        checkpoint_path="path/to/your/checkpoint.torch",
    ),
    "function_timm": FunctionSpec(
        "timm.create_model", arguments={"model_name": "resnet18", "pretrained": True}
    ),
    "timm": TimmSpec(
        "vit_tiny_patch16_224",
        pretrained=True,
        out_indices=1,
        model_kwargs={"dynamic_img_size": True},
    ),
    "huggingface": HuggingFaceSpec("owkin/phikon", transforms=[ClsToken()]),
    "onnx": OnnxSpec("path/to/model.onnx", device="cuda"),
    "torch_hub": TorchHubSpec(
        "facebookresearch/dinov2:main",
        "dinov2_vits14_reg",
        source="github",
        out_indices=(8, 11),
        norm=True,
        trust_repo=False,
        model_kwargs={"force_reload": False},
        transforms=[PatchGrid(num_register_tokens=4, ignore_remaining=True)],
    ),
    "env": RegistrySpec(
        "pathology/kaiko_vits16",
        model_kwargs={"out_indices": 1, "dynamic_img_size": False, "cache_dir": "/tmp/checkpoints"},
        transforms=[ClsToken(num_register_tokens=4, include_patch_mean=True)],
    ),
}


@pytest.fixture(autouse=True)
def _unset_test_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "FMA_TEST_MODEL_NAME",
        "FMA_TEST_FALLBACK",
        "FMA_TEST_OUT_INDICES",
        "FMA_TEST_DYNAMIC",
        "FMA_TEST_ROOT",
        "FMA_TEST_REGISTERS",
        "FMA_TEST_PATCH_MEAN",
    ):
        monkeypatch.delenv(name, raising=False)


def test_every_config_file_is_in_the_table() -> None:
    assert sorted(p.stem for p in (CONFIGS / "eva").glob("*.yaml")) == sorted(DOC_CASES)
    assert sorted(p.stem for p in (CONFIGS / "ours").glob("*.yaml")) == sorted(DOC_CASES)


@pytest.mark.parametrize("name", sorted(DOC_CASES))
def test_eva_config_loads_to_the_record(name: str) -> None:
    assert specs.load(CONFIGS / "eva" / f"{name}.yaml") == DOC_CASES[name]


@pytest.mark.parametrize("name", sorted(DOC_CASES))
def test_eva_and_our_format_load_equal(name: str) -> None:
    eva = specs.load(CONFIGS / "eva" / f"{name}.yaml")
    ours = specs.load(CONFIGS / "ours" / f"{name}.yaml")
    assert eva == ours
    assert type(eva) is type(ours)


@pytest.mark.parametrize("name", sorted(DOC_CASES))
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_eva_config_round_trips_and_dumps(name: str, suffix: str, tmp_path: Path) -> None:
    spec = specs.load(CONFIGS / "eva" / f"{name}.yaml")
    assert specs.structure(specs.unstructure(spec)) == spec
    target = tmp_path / f"{name}{suffix}"
    specs.dump(spec, target)
    assert specs.load(target) == spec
    # the dump is our format, tagged with source: first
    assert next(iter(specs.unstructure(spec))) == "source"


def test_env_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMA_TEST_FALLBACK", "pathology/other")
    monkeypatch.setenv("FMA_TEST_OUT_INDICES", "[2, 3]")
    monkeypatch.setenv("FMA_TEST_DYNAMIC", "true")
    monkeypatch.setenv("FMA_TEST_ROOT", "/data")
    monkeypatch.setenv("FMA_TEST_REGISTERS", "0")
    spec = specs.load(CONFIGS / "eva" / "env.yaml")
    assert spec.model_name == "pathology/other"
    assert spec.model_kwargs == {
        "out_indices": [2, 3],
        "dynamic_img_size": True,
        "cache_dir": "/data/checkpoints",
    }
    assert spec.transforms == (ClsToken(num_register_tokens=0, include_patch_mean=True),)


# ---------------------------------------------------------------------------------------------
# every accepted class path spelling
# ---------------------------------------------------------------------------------------------

MINIMAL_ARGS = {
    RegistrySpec: {"model_name": "m"},
    TimmSpec: {"model_name": "m"},
    FunctionSpec: {"path": "pkg.fn"},
    HuggingFaceSpec: {"model_name_or_path": "org/m"},
    OnnxSpec: {"path": "m.onnx"},
    TorchHubSpec: {"repo_or_dir": "org/repo", "model_name": "m"},
}


@pytest.mark.parametrize("class_path", sorted(specs.EVA_WRAPPERS))
def test_every_wrapper_spelling(class_path: str) -> None:
    record = specs.EVA_WRAPPERS[class_path]
    args = MINIMAL_ARGS[record]
    config = {"class_path": class_path, "init_args": args}
    assert specs.structure(config) == record(**args)
    assert specs.structure({"backbone": config}) == record(**args)


def test_documented_spellings_are_accepted() -> None:
    for path in (
        "eva.vision.models.wrappers.ModelFromRegistry",
        "eva.vision.models.wrappers.TimmModel",
        "eva.models.wrappers.ModelFromFunction",
        "eva.models.wrappers.HuggingFaceModel",
        "eva.models.wrappers.ONNXModel",
        "eva.models.wrappers.TorchHubModel",
        "eva.core.models.wrappers.ModelFromFunction",
        "eva.core.models.wrappers.HuggingFaceModel",
        "eva.core.models.wrappers.ONNXModel",
        "eva.core.models.wrappers.TorchHubModel",
    ):
        assert path in specs.EVA_WRAPPERS


@pytest.mark.parametrize("class_path", sorted(specs.EVA_TRANSFORMS))
def test_every_transform_spelling(class_path: str) -> None:
    record = specs.EVA_TRANSFORMS[class_path]
    assert specs.structure_transform({"class_path": class_path}) == record()
    assert specs.structure_transform(class_path) == record()


# ---------------------------------------------------------------------------------------------
# argument names: eva -> ours
# ---------------------------------------------------------------------------------------------

T = "eva.models.networks.transforms."
TRANSFORM_ARGS = [
    (T + "ExtractCLSFeatures", {"cls_index": 2}, ClsToken(index=2)),
    (T + "ExtractCLSFeatures", {"num_register_tokens": 4}, ClsToken(num_register_tokens=4)),
    (T + "ExtractCLSFeatures", {"include_patch_tokens": True}, ClsToken(include_patch_mean=True)),
    (T + "ExtractPatchFeatures", {"has_cls_token": False}, PatchGrid(has_cls_token=False)),
    (T + "ExtractPatchFeatures", {"num_reg_tokens": 4}, PatchGrid(num_register_tokens=4)),
    (T + "ExtractPatchFeatures", {"num_register_tokens": 4}, PatchGrid(num_register_tokens=4)),
    (
        T + "ExtractPatchFeatures",
        {"ignore_remaining_dims": True},
        PatchGrid(ignore_remaining=True),
    ),
    (T + "AsDiscrete", {"argmax": True, "to_onehot": 3}, AsDiscrete(argmax=True, to_onehot=3)),
    (T + "AsDiscrete", {"threshold": 0.5}, AsDiscrete(threshold=0.5)),
    (
        T + "AsDiscrete",
        {"argmax": True, "keepdim": False, "dim": -1, "to_onehot": None, "threshold": None},
        AsDiscrete(argmax=True, keepdim=False, dim=-1),
    ),
]


@pytest.mark.parametrize(("class_path", "init_args", "expected"), TRANSFORM_ARGS)
def test_transform_argument_names(class_path: str, init_args: dict, expected: object) -> None:
    assert specs.structure_transform({"class_path": class_path, "init_args": init_args}) == expected


W = "eva.models.wrappers."
V = "eva.vision.models.wrappers."
WRAPPER_ARGS = [
    # eva's "no checkpoint" default is the empty string
    (V + "TimmModel", {"model_name": "m", "checkpoint_path": ""}, TimmSpec("m")),
    (
        V + "TimmModel",
        {"model_name": "m", "concat_mean_patch_tokens": False},
        TimmSpec("m"),
    ),
    (
        V + "TimmModel",
        {"model_name": "m", "out_indices": [0, 2]},
        TimmSpec("m", out_indices=(0, 2)),
    ),
    # eva merges model_extra_kwargs over model_kwargs
    (
        V + "ModelFromRegistry",
        {"model_name": "m", "model_kwargs": {"a": 1, "b": 1}, "model_extra_kwargs": {"b": 2}},
        RegistrySpec("m", model_kwargs={"a": 1, "b": 2}),
    ),
    # torch.hub.load's source and from_pretrained's trust_remote_code live in model_kwargs
    (
        W + "TorchHubModel",
        {"repo_or_dir": "d", "model_name": "m", "model_kwargs": {"source": "local", "x": 1}},
        TorchHubSpec("d", "m", source="local", model_kwargs={"x": 1}),
    ),
    (
        W + "TorchHubModel",
        {"repo_or_dir": "d", "model_name": "m", "pretrained": False, "checkpoint_path": "c.pt"},
        TorchHubSpec("d", "m", pretrained=False, checkpoint_path="c.pt"),
    ),
    (
        W + "HuggingFaceModel",
        {"model_name_or_path": "o/m", "model_kwargs": {"trust_remote_code": True}},
        HuggingFaceSpec("o/m", trust_remote_code=True),
    ),
    (W + "ONNXModel", {"path": "m.onnx", "device": None}, OnnxSpec("m.onnx")),
    (
        W + "ModelFromFunction",
        {"path": "my.loader", "transforms": T + "ExtractCLSFeatures"},
        FunctionSpec("my.loader", transforms=[ClsToken()]),
    ),
    # a list of transforms, mixing eva class paths and our own names
    (
        W + "HuggingFaceModel",
        {
            "model_name_or_path": "o/m",
            "tensor_transforms": [
                {"class_path": T + "ExtractCLSFeatures", "init_args": {"cls_index": 0}},
                "l2_normalize",
            ],
        },
        HuggingFaceSpec("o/m", transforms=[ClsToken(), specs.L2Normalize()]),
    ),
    # init_args may be absent for a class without arguments
    ("my.pkg.Net", None, ModuleSpec("my.pkg.Net")),
]


@pytest.mark.parametrize(("class_path", "init_args", "expected"), WRAPPER_ARGS)
def test_wrapper_argument_names(class_path: str, init_args: dict | None, expected: object) -> None:
    config = {"class_path": class_path}
    if init_args is not None:
        config["init_args"] = init_args
    spec = specs.structure({"backbone": config})
    assert spec == expected
    assert specs.structure(specs.unstructure(spec)) == spec


@pytest.mark.parametrize(
    ("class_path", "init_args", "where"),
    [
        (V + "TimmModel", {"model_name": "m", "concat_mean_patch_tokens": True}, "concat_mean"),
        (
            W + "TorchHubModel",
            {"repo_or_dir": "d", "model_name": "m", "forward_features": True},
            "forward_features",
        ),
        (
            W + "HuggingFaceModel",
            {
                "model_name_or_path": "m",
                "transforms": "cls_token",
                "tensor_transforms": "cls_token",
            },
            "tensor_transforms",
        ),
    ],
)
def test_unsupported_or_conflicting_arguments(class_path: str, init_args: dict, where: str) -> None:
    with pytest.raises(specs.SpecError, match=rf"backbone\.init_args\.{where}"):
        specs.structure({"backbone": {"class_path": class_path, "init_args": init_args}})


#: eva's own networks are nn.Module classes, not wrappers: a ModuleSpec, as eva's docs say
EVA_NETWORKS = [
    "eva.vision.models.networks.backbones.radiology.SwinUNETREncoder",
    "eva.vision.models.networks.backbones.radiology.SegResNetEncoder",
    "eva.vision.models.networks.decoders.segmentation.ConvDecoderMS",
]


@pytest.mark.parametrize("class_path", EVA_NETWORKS)
def test_eva_network_class_is_a_module(class_path: str) -> None:
    config = {"backbone": {"class_path": class_path, "init_args": {"in_channels": 1}}}
    assert specs.structure(config) == ModuleSpec(class_path, init_args={"in_channels": 1})


@pytest.mark.parametrize(
    "class_path",
    [
        "eva.vision.models.networks.backbones.TimmModle",  # a wrapper's name, misspelled
        "eva.models.wrappers.SwinUNETREncoder",  # a network in a wrapper module
        "eva.models.networks.transforms.ExtractCLSFeatures",  # a transform as a backbone
    ],
)
def test_eva_wrapper_near_misses_stay_errors(class_path: str) -> None:
    with pytest.raises(specs.SpecError, match=r"eva model wrapper class path"):
        specs.structure({"class_path": class_path})

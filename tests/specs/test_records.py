"""Spec records: frozen, hashable, validated at construction and on evolve, eva's defaults."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import specs
from specs import (
    AsDiscrete,
    ClsToken,
    CustomSpec,
    FlaxSpec,
    FrozenDict,
    FunctionSpec,
    HiddenState,
    HuggingFaceSpec,
    ModuleSpec,
    OnnxSpec,
    RegistrySpec,
    Select,
    SpecError,
    TimmSpec,
    TorchHubSpec,
)

VALID = [
    RegistrySpec("m"),
    ModuleSpec("pkg.Net"),
    FunctionSpec("pkg.fn"),
    TorchHubSpec("dir", "m"),
    TimmSpec("m"),
    HuggingFaceSpec("o/m"),
    OnnxSpec("m.onnx"),
    CustomSpec("pkg.load"),
    FlaxSpec("pkg.Net"),
]


def test_every_source_is_listed() -> None:
    assert {type(s) for s in VALID} == set(specs.SPEC_TYPES)
    assert set(specs.SOURCES.values()) == set(specs.SPEC_TYPES)
    assert set(specs.TRANSFORMS.values()) == set(specs.TRANSFORM_TYPES)


@pytest.mark.parametrize("spec", VALID, ids=lambda s: type(s).__name__)
def test_frozen_hashable_comparable(spec: Any) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.transforms = ()
    assert hash(spec) == hash(attrs.evolve(spec))
    assert spec == attrs.evolve(spec)
    assert spec != attrs.evolve(spec, transforms=[ClsToken()])
    assert specs.source_of(spec) in specs.SOURCES


# eva's defaults: TimmModel(pretrained=True), TorchHubModel(norm=False, trust_repo=True), ...
DEFAULTS = [
    (TimmSpec("m"), {"pretrained": True, "checkpoint_path": None, "out_indices": None}),
    (
        TorchHubSpec("d", "m"),
        {"source": "github", "norm": False, "trust_repo": True, "pretrained": True},
    ),
    (OnnxSpec("m.onnx"), {"device": "cpu", "providers": None}),
    (HuggingFaceSpec("o/m"), {"trust_remote_code": False, "model_kwargs": {}}),
    (ClsToken(), {"index": 0, "num_register_tokens": 0, "include_patch_mean": False}),
    (AsDiscrete(), {"argmax": False, "to_onehot": None, "threshold": None}),
]


@pytest.mark.parametrize(("record", "expected"), DEFAULTS)
def test_defaults_follow_eva(record: Any, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        assert getattr(record, name) == value


# (constructor, kwargs, field named in the error, fragment of the expectation)
INVALID = [
    (TimmSpec, {"model_name": ""}, "model_name", "non-empty string"),
    (TimmSpec, {"model_name": "m", "pretrained": "yes"}, "pretrained", "boolean"),
    (TimmSpec, {"model_name": "m", "out_indices": 0}, "out_indices", ">= 1"),
    (TimmSpec, {"model_name": "m", "out_indices": []}, "out_indices", "non-empty list"),
    (TimmSpec, {"model_name": "m", "checkpoint_sha256": "abc"}, "checkpoint_sha256", "sha256"),
    (
        ModuleSpec,
        {"class_path": "a.B", "checkpoint_converter": "convert"},
        "checkpoint_converter",
        "import path",
    ),
    (
        TorchHubSpec,
        {"repo_or_dir": "d", "model_name": "m", "source": "web"},
        "source",
        "github, local",
    ),
    (ModuleSpec, {"class_path": "Net"}, "class_path", "import path"),
    (FunctionSpec, {"path": "pkg.fn", "arguments": 3}, "arguments", "mapping"),
    (OnnxSpec, {"path": "m.onnx", "providers": []}, "providers", "provider names"),
    (OnnxSpec, {"path": "m.onnx", "intra_op_num_threads": 0}, "intra_op_num_threads", ">= 1"),
    (FlaxSpec, {"module": "pkg.Net", "input_shape": (1, 0)}, "input_shape", "positive integers"),
    (CustomSpec, {"load": "pkg.load", "forward": "nodots"}, "forward", "import path"),
    (ClsToken, {"num_register_tokens": -1}, "num_register_tokens", ">= 0"),
    (HiddenState, {"name": ""}, "name", "field name"),
    (Select, {"indices": ()}, "indices", "non-empty list"),
    (AsDiscrete, {"to_onehot": True}, "to_onehot", "integer >= 1"),
    (
        RegistrySpec,
        {"model_name": "m", "transforms": ["cls_token"]},
        "transforms[0]",
        "transform record",
    ),
]


@pytest.mark.parametrize(("cls", "kwargs", "field", "fragment"), INVALID)
def test_validators_reject_bad_values(cls: type, kwargs: dict, field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        cls(**kwargs)
    assert info.value.path == field
    assert fragment in str(info.value)


def test_evolve_validates_again() -> None:
    with pytest.raises(SpecError, match=r"^pretrained: expected a boolean"):
        attrs.evolve(TimmSpec("m"), pretrained=None)


def test_lists_become_tuples_and_dicts_frozen() -> None:
    spec = TimmSpec("m", out_indices=[1, 2], model_kwargs={"a": [1, {"b": 2}]})
    assert spec.out_indices == (1, 2)
    assert isinstance(spec.model_kwargs, FrozenDict)
    assert spec.model_kwargs == {"a": [1, {"b": 2}]}
    assert spec.model_kwargs["a"] == (1, FrozenDict({"b": 2}))
    with pytest.raises(TypeError):
        spec.model_kwargs["a"] = 1  # type: ignore[index]
    assert hash(spec) == hash(TimmSpec("m", out_indices=(1, 2), model_kwargs={"a": (1, {"b": 2})}))

"""Every kind of bad input gets one SpecError naming the field path, expected, got and choices."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import specs
from specs import SpecError

V = "eva.vision.models.wrappers."
W = "eva.models.wrappers."


def _error(obj: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        specs.structure(obj)
    return info.value


# (config, path, fragments the message must contain)
CASES = [
    # unknown eva class path: the wrapper names are listed, the closest first
    (
        {"backbone": {"class_path": V + "TimModel", "init_args": {"model_name": "m"}}},
        "backbone.class_path",
        [
            "eva model wrapper",
            "'eva.vision.models.wrappers.TimModel' (str)",
            "Did you mean 'eva.vision.models.wrappers.TimmModel'",
            "eva.models.wrappers.ONNXModel",
            "eva.models.wrappers.TorchHubModel",
        ],
    ),
    (
        {"class_path": "eva.models.wrappers.BaseModel"},
        "class_path",
        ["BaseModel is abstract", "source: custom"],
    ),
    (
        {"class_path": "eva.models.networks.transforms.ExtractCLSFeature"},
        "class_path",
        ["eva model wrapper"],
    ),
    # misspelled eva argument: did-you-mean among that wrapper's arguments
    (
        {
            "backbone": {
                "class_path": V + "TimmModel",
                "init_args": {"model_name": "m", "out_indice": 1},
            }
        },
        "backbone.init_args.out_indice",
        ["argument of eva's TimmModel", "Did you mean 'out_indices'", "model_kwargs"],
    ),
    (
        {
            "class_path": W + "HuggingFaceModel",
            "init_args": {
                "model_name_or_path": "m",
                "tensor_transforms": {
                    "class_path": "eva.models.networks.transforms.ExtractCLSFeatures",
                    "init_args": {"cls_idx": 1},
                },
            },
        },
        "init_args.tensor_transforms.init_args.cls_idx",
        ["ExtractCLSFeatures", "Did you mean 'cls_index'"],
    ),
    (
        {"class_path": "my.Net", "init_arg": {"a": 1}},
        "init_arg",
        ["Did you mean 'init_args'"],
    ),
    # misspelled field in our format
    (
        {"source": "timm", "model_nme": "m"},
        "model_nme",
        ["a field of source 'timm' (TimmSpec)", "Did you mean 'model_name'", "Remove or rename it"],
    ),
    (
        {"source": "timm", "model_name": "m", "transforms": [{"transform": "cls_token", "idx": 1}]},
        "transforms[0].idx",
        ["transform 'cls_token'", "Did you mean 'index'"],
    ),
    (
        {"source": "timmm", "model_name": "m"},
        "source",
        ["a source name", "Did you mean 'timm'", "torch_hub"],
    ),
    (
        {"source": "timm", "model_name": "m", "transforms": ["cls_tokens"]},
        "transforms[0]",
        ["a transform name", "Did you mean 'cls_token'", "patch_grid"],
    ),
    ({"sourse": "timm"}, "sourse", ["Did you mean 'source'"]),
    # wrong types: expected, got value and type
    (
        {
            "backbone": {
                "class_path": V + "TimmModel",
                "init_args": {"model_name": "m", "pretrained": "yes"},
            }
        },
        "backbone.init_args.pretrained",
        ["a boolean (true or false)", "'yes' (str)"],
    ),
    (
        {
            "backbone": {
                "class_path": V + "TimmModel",
                "init_args": {"model_name": "m", "out_indices": "last"},
            }
        },
        "backbone.init_args.out_indices",
        ["list of integer block indices", "'last' (str)"],
    ),
    (
        {
            "backbone": {
                "class_path": V + "TimmModel",
                "init_args": {"model_name": "m", "out_indices": [1, "x"]},
            }
        },
        "backbone.init_args.out_indices[1]",
        ["an integer", "'x' (str)"],
    ),
    (
        {
            "backbone": {
                "class_path": V + "TimmModel",
                "init_args": {"model_name": "m", "out_indices": 0},
            }
        },
        "backbone.init_args.out_indices",
        [">= 1", "0 (int)"],
    ),
    (
        {
            "backbone": {
                "class_path": W + "TorchHubModel",
                "init_args": {
                    "repo_or_dir": "d",
                    "model_name": "m",
                    "model_kwargs": {"source": "hub"},
                },
            }
        },
        "backbone.init_args.model_kwargs.source",
        ["one of github, local", "'hub' (str)"],
    ),
    # the path of the example
    (
        {
            "backbone": {
                "class_path": V + "ModelFromRegistry",
                "init_args": {"model_name": "m", "model_kwargs": {"out_indices": "last"}},
            }
        },
        "backbone.init_args.model_kwargs.out_indices",
        ["list of integer block indices", "'last' (str)"],
    ),
    (
        {"source": "timm", "model_name": 7},
        "model_name",
        ["a string", "7 (int)"],
    ),
    (
        {"source": "timm", "model_name": "m", "model_kwargs": [1]},
        "model_kwargs",
        ["a mapping", "[1] (list)"],
    ),
    (
        {"source": "onnx", "path": "m.onnx", "providers": "CPUExecutionProvider"},
        "providers",
        ["a list of strings", "'CPUExecutionProvider' (str)"],
    ),
    (
        {"source": "onnx", "path": "m.onnx", "device": "gpu"},
        "device",
        ["one of cpu, cuda", "'gpu' (str)"],
    ),
    (
        {"source": "module", "class_path": "NoDots"},
        "class_path",
        ["import path", "'NoDots' (str)"],
    ),
    (
        {
            "source": "timm",
            "model_name": "m",
            "transforms": [{"transform": "cls_token", "index": True}],
        },
        "transforms[0].index",
        ["an integer", "True (bool)"],
    ),
    (
        {"source": "timm", "model_name": "m", "transforms": 3},
        "transforms",
        ["a list of transforms", "3 (int)"],
    ),
    ([1, 2], "<root>", ["a registry name (string)", "'source:'", "'class_path:'", "(list)"]),
    ("", "<root>", ["non-empty"]),
    (
        {"backbone": {"source": "timm", "model_name": "m"}, "head": {}},
        "head",
        ["next to 'backbone'"],
    ),
    # missing required fields
    (
        {"backbone": {"class_path": V + "TimmModel", "init_args": {"pretrained": False}}},
        "backbone.init_args.model_name",
        ["required field of eva TimmModel", "a string", "missing"],
    ),
    (
        {"source": "torch_hub", "repo_or_dir": "d"},
        "model_name",
        ["required field of source 'torch_hub'", "missing"],
    ),
    (
        {"source": "timm", "model_name": "m", "transforms": [{"transform": "select"}]},
        "transforms[0].indices",
        ["required field of transform 'select'"],
    ),
    # unset environment variables without default
    (
        {
            "backbone": {
                "class_path": V + "TimmModel",
                "init_args": {"model_name": "${oc.env:FMA_TEST_UNSET}"},
            }
        },
        "backbone.init_args.model_name",
        ["FMA_TEST_UNSET to be set", "export FMA_TEST_UNSET", "${oc.env:FMA_TEST_UNSET, default}"],
    ),
    (
        {"source": "timm", "model_name": "${oc.env:FMA_TEST_UNSET, ${oc.env:FMA_TEST_UNSET_TOO}}"},
        "model_name",
        ["FMA_TEST_UNSET_TOO to be set"],
    ),
    (
        {"source": "timm", "model_name": "${oc.env:FMA_TEST_UNSET"},
        "model_name",
        ["a closed interpolation", "Close every '${' with '}'"],
    ),
    (
        {"source": "timm", "model_name": "${model.name}"},
        "model_name",
        ["a reference to a node of this config", "'model.name' not found"],
    ),
]


@pytest.mark.parametrize(("config", "path", "fragments"), CASES)
def test_message_names_path_expected_and_got(
    config: Any, path: str, fragments: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FMA_TEST_UNSET", raising=False)
    monkeypatch.delenv("FMA_TEST_UNSET_TOO", raising=False)
    error = _error(config)
    message = str(error)
    assert error.path == path
    assert message.startswith(f"{path}: expected ")
    for fragment in fragments:
        assert fragment in message, message


def test_several_problems_are_listed() -> None:
    error = _error({"source": "timm", "model_name": 1, "pretrained": "no"})
    assert error.path == "model_name"
    assert "Also invalid: pretrained" in str(error)


def test_error_attributes_and_type() -> None:
    error = _error({"source": "onnx", "path": "m.onnx", "device": "gpu"})
    assert isinstance(error, ValueError)
    assert error.location == ("device",)
    assert error.got == "gpu"
    assert error.choices == ("cpu", "cuda")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert error.at("backbone", "init_args").path == "backbone.init_args.device"
    hinted = error.with_hint("Use cpu.")
    assert (hinted.location, hinted.expected, hinted.got, hinted.choices) == (
        error.location,
        error.expected,
        error.got,
        error.choices,
    )
    assert str(hinted).endswith("Use cpu.") and error.hint is None


def test_no_cattrs_exception_chain() -> None:
    error = _error({"source": "timm", "model_name": 1})
    assert error.__cause__ is None
    assert error.__suppress_context__


EVA_DOCS_TIMM_WITH_TYPO = """\
backbone:
  class_path: eva.vision.models.wrappers.TimmModel
  init_args:
    model_name: vit_tiny_patch16_224
    pretrained: true
    out_indices=1 # to return the last feature map
    model_kwargs:
      dynamic_img_size: true
"""

SYNTAX_ERRORS = [
    # the eva documentation's TimmModel example has "out_indices=1" on line 6
    (
        EVA_DOCS_TIMM_WITH_TYPO,
        ["valid YAML", "line 6", "out_indices=1", "could not find expected ':'"],
    ),
    ("source: timm\nmodel_name: [a, b\n", ["valid YAML", "line 2", "expected ',' or ']'"]),
    ("source: timm\nsource: onnx\n", ["valid YAML", "line 2", "duplicate key 'source'"]),
    ('{"source": "timm",\n "model_name": }', ["valid JSON", "line 2", "column 16"]),
]


@pytest.mark.parametrize(("text", "fragments"), SYNTAX_ERRORS)
def test_syntax_errors_give_the_line(text: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        specs.loads(text, name="backbone.yaml")
    message = str(info.value)
    assert message.startswith("backbone.yaml: expected valid")
    for fragment in fragments:
        assert fragment in message, message


# keys and values that reach every branch: real field names, eva names, wrong types
_keys = st.sampled_from(
    [
        "source",
        "class_path",
        "init_args",
        "backbone",
        "model_name",
        "transforms",
        "tensor_transforms",
        "out_indices",
        "model_kwargs",
        "path",
        "transform",
        "index",
        "hub_source",
        "device",
    ]
)
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "timm",
            "registry",
            "torch_hub",
            "onnx",
            "cls_token",
            "eva.vision.models.wrappers.TimmModel",
            "eva.models.wrappers.ONNXModel",
            "eva.models.networks.transforms.ExtractCLSFeatures",
            "pkg.Net",
            "${oc.env:FMA_TEST_UNSET}",
            "${oc.env:FMA_TEST_UNSET, 1}",
            "${",
            "",
        ]
    )
    | st.text(max_size=5)
)
_configs = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_keys | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=10,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(config=_configs)
def test_any_input_gives_a_spec_or_a_spec_error(config: Any) -> None:
    try:
        spec = specs.structure(config)
    except SpecError as error:
        assert str(error).startswith(f"{error.path}: expected ")
    else:
        assert isinstance(spec, specs.SPEC_TYPES)

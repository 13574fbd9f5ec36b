"""Our format <-> records: tables for each source and transform form, hypothesis round trips."""

from __future__ import annotations

import json
import string
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import specs
from specs import (
    AsDiscrete,
    ClsToken,
    CustomSpec,
    FlaxSpec,
    FunctionSpec,
    HiddenState,
    HuggingFaceSpec,
    L2Normalize,
    MeanPatch,
    ModuleSpec,
    OnnxSpec,
    PatchGrid,
    RegistrySpec,
    Select,
    TimmSpec,
    TorchHubSpec,
)

# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------

OURS = [
    ({"source": "registry", "model_name": "a/b"}, RegistrySpec("a/b")),
    ({"source": "module", "class_path": "pkg.Net"}, ModuleSpec("pkg.Net")),
    ({"source": "function", "path": "timm.create_model"}, FunctionSpec("timm.create_model")),
    (
        {"source": "torch_hub", "repo_or_dir": "dir", "model_name": "m", "hub_source": "local"},
        TorchHubSpec("dir", "m", source="local"),
    ),
    (
        {"source": "timm", "model_name": "vit_tiny_patch16_224", "pretrained": False},
        TimmSpec("vit_tiny_patch16_224", pretrained=False),
    ),
    ({"source": "huggingface", "model_name_or_path": "o/m"}, HuggingFaceSpec("o/m")),
    (
        {"source": "onnx", "path": "m.onnx", "providers": ["CPUExecutionProvider"]},
        OnnxSpec("m.onnx", providers=("CPUExecutionProvider",)),
    ),
    ({"source": "custom", "load": "my.load"}, CustomSpec("my.load")),
    (
        {"source": "flax", "module": "my.Net", "input_shape": [1, 3, 32, 32]},
        FlaxSpec("my.Net", input_shape=(1, 3, 32, 32)),
    ),
]


def test_table_covers_every_source() -> None:
    assert {type(record) for _, record in OURS} == set(specs.SPEC_TYPES)


@pytest.mark.parametrize(("data", "expected"), OURS)
def test_structure_our_format(data: dict, expected: object) -> None:
    assert specs.structure(data) == expected
    assert specs.structure({"backbone": data}) == expected
    assert specs.unstructure(expected) == data


def test_bare_string_is_a_registry_name() -> None:
    assert specs.structure("pathology/kaiko_vits16") == RegistrySpec("pathology/kaiko_vits16")
    assert specs.loads("pathology/kaiko_vits16") == RegistrySpec("pathology/kaiko_vits16")


def test_records_pass_through() -> None:
    spec = TimmSpec("m")
    assert specs.structure(spec) is spec
    assert specs.structure_transform(ClsToken()) == ClsToken()


TRANSFORM_FORMS = [
    ("cls_token", ClsToken()),
    ({"transform": "cls_token"}, ClsToken()),
    ({"transform": "cls_token", "num_register_tokens": 4}, ClsToken(num_register_tokens=4)),
    ({"transform": "patch_grid", "has_cls_token": False}, PatchGrid(has_cls_token=False)),
    ("mean_patch", MeanPatch()),
    ({"transform": "hidden_state", "name": 0}, HiddenState(0)),
    ({"transform": "select", "indices": [0, -1]}, Select((0, -1))),
    ({"transform": "as_discrete", "argmax": True}, AsDiscrete(argmax=True)),
    ({"transform": "l2_normalize", "axis": 1}, L2Normalize(axis=1)),
    (
        {
            "class_path": "eva.models.networks.transforms.ExtractCLSFeatures",
            "init_args": {"cls_index": 1},
        },
        ClsToken(index=1),
    ),
    ("eva.core.models.transforms.ExtractPatchFeatures", PatchGrid()),
]


@pytest.mark.parametrize(("data", "expected"), TRANSFORM_FORMS)
def test_transform_forms(data: Any, expected: object) -> None:
    assert specs.structure_transform(data) == expected
    spec = specs.structure({"source": "timm", "model_name": "m", "transforms": [data]})
    assert spec.transforms == (expected,)


def test_unstructure_is_compact_and_tagged_first() -> None:
    spec = TimmSpec(
        "vit_tiny_patch16_224",
        pretrained=False,
        transforms=[ClsToken(num_register_tokens=4), PatchGrid()],
    )
    data = specs.unstructure(spec)
    assert data == {
        "source": "timm",
        "model_name": "vit_tiny_patch16_224",
        "pretrained": False,
        "transforms": [{"transform": "cls_token", "num_register_tokens": 4}, "patch_grid"],
    }
    assert next(iter(data)) == "source"


def test_unstructure_escapes_interpolation_syntax() -> None:
    spec = FunctionSpec("pkg.fn", arguments={"template": "${oc.env:HOME}"})
    data = specs.unstructure(spec)
    assert data["arguments"]["template"] == "\\${oc.env:HOME}"
    assert specs.structure(data) == spec


def test_torch_hub_source_is_written_hub_source() -> None:
    spec = TorchHubSpec("dir", "m", source="local")
    assert specs.unstructure(spec) == {
        "source": "torch_hub",
        "repo_or_dir": "dir",
        "model_name": "m",
        "hub_source": "local",
    }


# ---------------------------------------------------------------------------------------------
# hypothesis: generated records of every type
# ---------------------------------------------------------------------------------------------

_ident = st.text(string.ascii_letters + "_", min_size=1, max_size=6)
dotted = st.builds(lambda parts: ".".join(parts), st.lists(_ident, min_size=2, max_size=4))
names = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")
# strings that exercise the interpolation escapes as well as arbitrary text
tricky = st.text("ab$\\{}:, '\"", max_size=12) | st.text(max_size=12)
maybe_name = st.none() | names
sha = st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=6,
)
kwargs = st.dictionaries(tricky, values, max_size=3)
small = st.integers(0, 16)
out_indices = (
    st.none() | st.integers(1, 12) | st.lists(st.integers(-12, 12), min_size=1, max_size=4)
)

transforms = st.lists(
    st.one_of(
        st.builds(ClsToken, st.integers(-4, 4), small, st.booleans()),
        st.builds(PatchGrid, st.booleans(), small, st.booleans()),
        st.builds(MeanPatch, st.booleans(), small),
        st.builds(HiddenState, names | st.integers(-4, 4)),
        st.builds(Select, st.lists(st.integers(-4, 4), min_size=1, max_size=3)),
        st.builds(
            AsDiscrete,
            st.booleans(),
            st.none() | st.integers(1, 9),
            st.none() | st.floats(-1, 1),
            st.integers(-3, 3),
            st.booleans(),
        ),
        st.builds(L2Normalize, st.integers(-3, 3)),
    ),
    max_size=3,
)
checkpoint = {
    "checkpoint_sha256": sha,
    "checkpoint_prefix": maybe_name,
    "checkpoint_converter": st.none() | dotted,
    "strict": st.booleans(),
}

#: every setting and Lightning's aliases (a record holds the setting an alias stands for)
precision = st.sampled_from([*specs.PRECISIONS, "bf16", "16", 16, "32", 32])

SPEC_STRATEGIES = {
    RegistrySpec: st.builds(
        RegistrySpec, names, kwargs, transforms=transforms, precision=st.none() | precision
    ),
    ModuleSpec: st.builds(
        ModuleSpec,
        dotted,
        kwargs,
        maybe_name,
        transforms=transforms,
        precision=precision,
        **checkpoint,
    ),
    FunctionSpec: st.builds(
        FunctionSpec,
        dotted,
        kwargs,
        maybe_name,
        transforms=transforms,
        precision=precision,
        **checkpoint,
    ),
    TorchHubSpec: st.builds(
        TorchHubSpec,
        names,
        names,
        st.sampled_from(["github", "local"]),
        st.booleans(),
        maybe_name,
        out_indices,
        st.booleans(),
        st.booleans(),
        kwargs,
        transforms=transforms,
        precision=precision,
        **checkpoint,
    ),
    TimmSpec: st.builds(
        TimmSpec,
        names,
        st.booleans(),
        maybe_name,
        out_indices,
        kwargs,
        transforms=transforms,
        precision=precision,
        **checkpoint,
    ),
    HuggingFaceSpec: st.builds(
        HuggingFaceSpec, names, kwargs, st.booleans(), transforms=transforms, precision=precision
    ),
    OnnxSpec: st.builds(
        OnnxSpec,
        names,
        st.sampled_from(["cpu", "cuda"]),
        st.none() | st.lists(names, min_size=1, max_size=2),
        st.none() | st.integers(1, 8),
        st.sampled_from(["disable", "basic", "extended", "all"]),
        transforms=transforms,
        precision=precision,
    ),
    CustomSpec: st.builds(
        CustomSpec, dotted, st.none() | dotted, kwargs, transforms=transforms, precision=precision
    ),
    FlaxSpec: st.builds(
        FlaxSpec,
        dotted,
        kwargs,
        maybe_name,
        st.integers(0, 2**31),
        st.lists(st.integers(1, 512), min_size=1, max_size=4),
        transforms=transforms,
        precision=precision,
    ),
}
any_spec = st.one_of(*SPEC_STRATEGIES.values())


def test_strategies_cover_every_record() -> None:
    assert set(SPEC_STRATEGIES) == set(specs.SPEC_TYPES)


def _is_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (str, bool, int, float))


@pytest.mark.parametrize("cls", specs.SPEC_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_structure_inverts_unstructure(cls: type, data: st.DataObject) -> None:
    spec = data.draw(SPEC_STRATEGIES[cls])
    plain = specs.unstructure(spec)
    assert _is_plain(plain)
    assert plain["source"] == specs.source_of(spec)
    assert specs.structure(plain) == spec
    # the record is rebuilt with the same field values, not only an equal-comparing one
    assert attrs.asdict(specs.structure(plain), recurse=False).keys() == attrs.asdict(spec).keys()


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(spec=any_spec)
def test_yaml_and_json_text_round_trip(spec: Any) -> None:
    for kind in ("yaml", "json"):
        text = specs.dumps(spec, kind)
        assert specs.loads(text) == spec
    # the JSON text is real JSON and the YAML text real YAML
    assert json.loads(specs.dumps(spec, "json"))["source"] == specs.source_of(spec)
    assert yaml.safe_load(specs.dumps(spec, "yaml"))["source"] == specs.source_of(spec)


@settings(max_examples=25, deadline=None)
@given(spec=any_spec, suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_dump_load_files_round_trip(spec: Any, suffix: str, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("dump") / f"spec{suffix}"
    specs.dump(spec, path)
    assert specs.load(path) == spec


@settings(max_examples=60, deadline=None)
@given(transform=transforms.filter(bool).map(lambda ts: ts[0]))
def test_transform_round_trip(transform: Any) -> None:
    plain = specs.unstructure_transform(transform)
    assert specs.structure_transform(plain) == transform
    if isinstance(plain, str):
        assert plain in specs.TRANSFORMS
        assert transform == specs.TRANSFORMS[plain]()

"""The registry: entries are specs (data), wildcards, overrides as in eva, register, errors."""

from __future__ import annotations

import attrs
import pytest
import timm
import torch

import adapters
import specs

REQUIRED = [
    "universal/vit_small_patch16_224_random",
    "universal/vit_small_patch16_224_dino",
    "universal/vit_tiny_patch16_224_random",
    "universal/vit_small_patch16_224_dino_1chan",
    "universal/vit_base_patch16_224_dino_1chan",
    "pathology/owkin_phikon",
    "pathology/owkin_phikon_v2",
    "pathology/histai_hibou_b",
    "pathology/histai_hibou_l",
    "pathology/mahmood_uni",
    "pathology/mahmood_uni2_h",
    "pathology/paige_virchow2",
    "pathology/bioptimus_h_optimus_0",
    "pathology/bioptimus_h0_mini",
    "pathology/prov_gigapath",
    "pathology/kaiko_vits16",
    "pathology/kaiko_vitl14",
    "pathology/kaiko_midnight_12k",
    "pathology/lunit_vits16",
    "pathology/lunit_vits8",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_entries_are_spec_records(name) -> None:
    spec = adapters.registry_spec(name)
    assert isinstance(spec, specs.SPEC_TYPES)
    assert specs.structure(specs.unstructure(spec)) == spec  # plain data, round-trips


# (entry, expected source type, model name / repo, register tokens of its CLS transform)
SOURCES = [
    ("pathology/paige_virchow2", specs.TimmSpec, "hf-hub:paige-ai/Virchow2", 4),
    ("pathology/bioptimus_h0_mini", specs.TimmSpec, "hf-hub:bioptimus/H0-mini", 4),
    ("pathology/mahmood_uni2_h", specs.TimmSpec, "hf-hub:MahmoodLab/UNI2-h", 8),
    ("pathology/mahmood_uni", specs.TimmSpec, "vit_large_patch16_224", 0),
    ("pathology/histai_hibou_b", specs.HuggingFaceSpec, "histai/hibou-B", 4),
    ("pathology/owkin_phikon", specs.HuggingFaceSpec, "owkin/phikon", 0),
]


@pytest.mark.parametrize(("name", "kind", "model", "registers"), SOURCES)
def test_entries_mirror_their_real_source(name, kind, model, registers) -> None:
    spec = adapters.registry_spec(name)
    assert type(spec) is kind
    assert getattr(spec, "model_name", getattr(spec, "model_name_or_path", None)) == model
    (cls,) = [t for t in spec.transforms if isinstance(t, specs.ClsToken)]
    assert cls.num_register_tokens == registers


def test_kaiko_entries_are_torch_hub() -> None:
    spec = adapters.registry_spec("pathology/kaiko_vits16")
    assert spec == specs.TorchHubSpec(
        repo_or_dir="kaiko-ai/towards_large_pathology_fms",
        model_name="vits16",
        model_kwargs={"dynamic_img_size": True, "out_indices": None},
    )
    # out_indices is an argument of kaiko's own hub entrypoint, as in eva
    assert (
        adapters.registry_spec("pathology/kaiko_vits16", {"out_indices": 2}).model_kwargs[
            "out_indices"
        ]
        == 2
    )


@pytest.mark.parametrize(
    ("pattern", "contains", "excludes"),
    [
        ("universal/*", "universal/vit_tiny_patch16_224_random", "pathology/owkin_phikon"),
        ("pathology/*phikon*", "pathology/owkin_phikon_v2", "pathology/mahmood_uni"),
        (
            "*dino_1chan",
            "universal/vit_base_patch16_224_dino_1chan",
            "universal/vit_small_patch16_224_dino",
        ),
        ("timm/resnet1?", "timm/resnet18", "timm/resnet101"),
        ("pathology/kaiko_vit?16", "pathology/kaiko_vitb16", "pathology/kaiko_vitl14"),
    ],
)
def test_list_models_wildcards(pattern, contains, excludes) -> None:
    names = adapters.list_models(pattern)
    assert contains in names and excludes not in names
    assert names == sorted(names)


def test_list_models_without_pattern_has_everything() -> None:
    names = adapters.list_models()
    assert set(REQUIRED) <= set(names)
    assert len([n for n in names if n.startswith("timm/")]) == len(timm.list_models())
    assert not any(n.startswith("timm/") for n in adapters.list_models(include_timm=False))


def test_timm_names_resolve_for_any_timm_model() -> None:
    assert adapters.registry_spec("timm/resnet18") == specs.TimmSpec("resnet18", pretrained=False)
    vit = adapters.registry_spec("timm/vit_small_patch16_224.dino")
    assert vit.model_kwargs == {"dynamic_img_size": True}
    backbone = adapters.build(specs.RegistrySpec("timm/resnet10t", model_kwargs={"num_classes": 0}))
    assert tuple(backbone(torch.randn(1, 3, 32, 32)).shape) == (1, 512)


OVERRIDES = [
    # entry argument replaced
    (
        "universal/vit_small_patch16_224_random",
        {"dynamic_img_size": False},
        lambda s: s.model_kwargs["dynamic_img_size"] is False,
    ),
    # spec field replaced
    (
        "universal/vit_small_patch16_224_dino",
        {"pretrained": False},
        lambda s: s.pretrained is False,
    ),
    # new argument passed to the model
    (
        "universal/vit_small_patch16_224_random",
        {"img_size": 64},
        lambda s: s.model_kwargs["img_size"] == 64,
    ),
    # out_indices drops the CLS transform (feature maps instead)
    (
        "pathology/paige_virchow2",
        {"out_indices": 2},
        lambda s: s.out_indices == 2 and s.transforms == (),
    ),
    # HuggingFace out_indices=1: patch grid with the entry's register tokens (eva)
    (
        "pathology/histai_hibou_b",
        {"out_indices": 1},
        lambda s: s.transforms[-1] == specs.PatchGrid(num_register_tokens=4),
    ),
    # eva's concat_mean_patch_tokens / include_patch_tokens
    (
        "pathology/mahmood_uni",
        {"concat_mean_patch_tokens": True},
        lambda s: s.transforms == (specs.ClsToken(include_patch_mean=True),),
    ),
    (
        "pathology/bioptimus_h0_mini",
        {"include_patch_tokens": True},
        lambda s: s.transforms[0].include_patch_mean,
    ),
    (
        "pathology/owkin_phikon",
        {"concat_mean_patch_tokens": False},
        lambda s: not s.transforms[-1].include_patch_mean,
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "check"), OVERRIDES)
def test_model_kwargs_override_entry_arguments(name, kwargs, check) -> None:
    assert check(adapters.registry_spec(name, kwargs))


def test_registry_spec_transforms_run_after_the_entry_ones() -> None:
    adapters.register(
        "test/tiny_vit_tokens",
        specs.TimmSpec(
            "vit_tiny_patch16_224",
            pretrained=False,
            model_kwargs={"img_size": 32, "depth": 1, "num_classes": 0, "global_pool": ""},
            transforms=(specs.ClsToken(),),
        ),
    )
    try:
        backbone = adapters.build(
            specs.RegistrySpec("test/tiny_vit_tokens", transforms=(specs.L2Normalize(),))
        )
        assert backbone.spec.transforms == (specs.ClsToken(), specs.L2Normalize())
        assert backbone.info["registry"] == "test/tiny_vit_tokens"
        out = backbone(torch.randn(2, 3, 32, 32))
        tokens = backbone.module(torch.randn(2, 3, 32, 32))
        assert tuple(out.shape) == (2, 192) and tokens.ndim == 3
        torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    finally:
        adapters.unregister("test/tiny_vit_tokens")


def test_register_function_and_decorator() -> None:
    spec = specs.ModuleSpec(
        class_path="torch.nn.Linear", init_args={"in_features": 2, "out_features": 2}
    )
    try:
        assert adapters.register("test/linear", spec) is spec

        @adapters.register("test/linear_decorated")
        def linear() -> specs.ModuleSpec:
            return attrs.evolve(spec, init_args={"in_features": 3, "out_features": 1})

        assert adapters.registry_spec("test/linear") == spec
        assert adapters.list_models("test/*") == ["test/linear", "test/linear_decorated"]
        assert tuple(adapters.build("test/linear_decorated")(torch.ones(4, 3)).shape) == (4, 1)
        with pytest.raises(ValueError, match=r"already registered .* overwrite=True"):
            adapters.register("test/linear", spec)
        adapters.register(
            "test/linear",
            attrs.evolve(spec, init_args={"in_features": 5, "out_features": 5}),
            overwrite=True,
        )
        assert adapters.registry_spec("test/linear").init_args["in_features"] == 5
    finally:
        adapters.unregister("test/linear")
        adapters.unregister("test/linear_decorated")


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("timm/mine", specs.TimmSpec("resnet18"), "not starting with 'timm/'"),
        ("", specs.TimmSpec("resnet18"), "non-empty string"),
        ("test/not_a_spec", {"source": "timm"}, "must be a spec record"),
    ],
)
def test_register_rejects_bad_input(name, spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        adapters.register(name, spec)


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("pathology/owkin_phikon_v3", "pathology/owkin_phikon_v2"),
        ("universal/vit_small_patch16_224_randon", "universal/vit_small_patch16_224_random"),
        ("timm/resnet181", "timm/resnet18"),
    ],
)
def test_unknown_name_lists_the_closest(name, closest) -> None:
    with pytest.raises(
        adapters.BuildError, match=f"model_name: unknown registry name '{name}'"
    ) as info:
        adapters.build(name)
    assert closest in str(info.value)
    assert "adapters.list_models" in str(info.value)


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "universal/vit_tiny_patch16_224_randon"])
def test_the_library_and_the_command_line_suggest_the_same_names(name, capsys) -> None:
    """One suggestion for a mistyped name (a timm architecture given without ``timm/`` is
    named with it first), in ``adapters.build``'s error and in the command line's line."""
    from adapters._src.app import cli

    with pytest.raises(adapters.BuildError) as info:
        adapters.build(name)
    library = str(info.value).split("Closest names: ")[1].split(". ")[0]
    assert cli.main(["inspect", name]) == 2
    line = capsys.readouterr().err
    assert f"did you mean {library}? " in line
    if "/" not in name:
        assert library.startswith(f"timm/{name}, ")


@pytest.mark.parametrize(
    ("name", "kwargs", "field", "message"),
    [
        (
            "pathology/owkin_phikon",
            {"out_indices": 3},
            "model_kwargs.out_indices",
            "supports out_indices 1",
        ),
        (
            "pathology/kaiko_vits16",
            {"concat_mean_patch_tokens": True},
            "model_kwargs.concat_mean_patch_tokens",
            "does not support CLS plus patch mean",
        ),
        (
            "universal/vit_small_patch16_224_random",
            {"pretrained": "yes"},
            "model_kwargs.pretrained",
            "expected a boolean",
        ),
    ],
)
def test_bad_overrides_name_the_argument(name, kwargs, field, message) -> None:
    with pytest.raises(adapters.BuildError, match=message) as info:
        adapters.registry_spec(name, kwargs)
    assert str(info.value).startswith(field)

"""The ``precision`` field of every backbone record: Lightning's settings and aliases, from
Python, our YAML and eva configs (``trainer: {init_args: {precision: ...}}``), one clear
error for anything else."""

from __future__ import annotations

import attrs
import pytest

import specs
from specs import RegistrySpec, SpecError, TimmSpec

#: one record of each source, at the default precision
RECORDS = [
    specs.ModuleSpec("pkg.Net"),
    specs.FunctionSpec("pkg.fn"),
    specs.TorchHubSpec("dir", "m"),
    TimmSpec("m"),
    specs.HuggingFaceSpec("o/m"),
    specs.OnnxSpec("m.onnx"),
    specs.CustomSpec("pkg.load"),
    specs.FlaxSpec("pkg.Net"),
]

EVA_TIMM = """
backbone:
  class_path: eva.vision.models.wrappers.TimmModel
  init_args: {model_name: vit_tiny_patch16_224, pretrained: false}
"""


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_defaults_to_float32_and_takes_every_setting(record) -> None:
    assert record.precision == "32-true"
    for name in specs.PRECISIONS:
        assert attrs.evolve(record, precision=name).precision == name
    # the default is not written back: a dumped float32 spec reads as it did before
    assert "precision" not in specs.unstructure(record)


def test_a_registry_name_keeps_the_entrys_own_precision_unless_told() -> None:
    assert RegistrySpec("m").precision is None
    assert RegistrySpec("m", precision="bf16").precision == "bf16-mixed"


@pytest.mark.parametrize(
    ("alias", "name"),
    [(32, "32-true"), ("32", "32-true"), ("fp32", "32-true"), (16, "16-mixed"),
     ("16", "16-mixed"), ("bf16", "bf16-mixed"), (" BF16-True ", "bf16-true")],
)  # fmt: skip
def test_lightnings_aliases_are_read_as_lightning_reads_them(alias, name) -> None:
    assert TimmSpec("m", precision=alias).precision == name
    loaded = specs.structure({"source": "timm", "model_name": "m", "precision": alias})
    assert loaded.precision == name
    assert specs.loads(specs.dumps(loaded)) == loaded


def test_a_mistyped_setting_names_the_field_and_suggests_the_closest() -> None:
    with pytest.raises(SpecError, match="Did you mean 'bf16-mixed'") as err:
        specs.loads("{source: timm, model_name: m, precision: bf16-mixd}")
    assert err.value.path == "precision"
    assert set(err.value.choices) == set(specs.PRECISIONS)


@pytest.mark.parametrize("value", ["bfloat16", "float16", "half"])
def test_a_bare_low_dtype_is_refused_for_saying_neither_mixed_nor_true(value) -> None:
    with pytest.raises(SpecError, match="does not say whether the weights are cast"):
        TimmSpec("m", precision=value)


@pytest.mark.parametrize("value", [None, 64, True, 16.0, ["bf16-true"]])
def test_other_values_are_refused(value) -> None:
    with pytest.raises(SpecError, match="precision: expected a precision setting"):
        TimmSpec("m", precision=value)


def test_yaml_and_eva_configs_carry_it() -> None:
    ours = specs.loads("{source: timm, model_name: m, precision: 16-true}")
    assert ours.precision == "16-true"
    # eva's wrappers take no precision (its trainer does): the error says where it goes
    with pytest.raises(SpecError, match="eva sets the precision on its trainer"):
        specs.loads(EVA_TIMM.replace("pretrained: false", "pretrained: false, precision: 16"))
    assert specs.loads("{source: registry, model_name: u/x, precision: bf16-true}") == RegistrySpec(
        "u/x", precision="bf16-true"
    )


def test_eva_trainer_precision_beside_the_backbone_is_read() -> None:
    trainer = "trainer:\n  class_path: eva.Trainer\n  init_args: {precision: bf16}\n"
    assert specs.loads(EVA_TIMM + trainer).precision == "bf16-mixed"
    # anything else under the trainer configures training: refused, not dropped
    with pytest.raises(SpecError, match=r"trainer\.init_args\.max_steps"):
        specs.loads(
            EVA_TIMM + trainer.replace("{precision: bf16}", "{precision: bf16, max_steps: 5}")
        )
    # two places disagreeing is a conflict, not a silent pick
    both = "backbone: {source: timm, model_name: m, precision: 16-true}\n"
    with pytest.raises(SpecError, match="Set the precision in one place"):
        specs.loads(both + trainer)
    assert specs.loads(both.replace("16-true", "bf16") + trainer).precision == "bf16-mixed"

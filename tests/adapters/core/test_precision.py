"""``build(spec, precision=...)`` and the spec's ``precision`` field on the torch and Flax
sources (``adapters/_src/precision.py``, ``torch_precision.py``): weights cast or kept, the
compute dtype, what is refused, and what the registry recommends."""

from __future__ import annotations

import textwrap

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.app.commands.inspect import precision_line
from adapters._src.entries import RECOMMENDED_PRECISION, builtin_entries
from adapters._src.precision import with_precision

#: a random-weight timm ViT small enough to build in a blink (LayerNorm, GELU, attention)
VIT = specs.TimmSpec(
    "vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "num_classes": 0},
)
LOW = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
LOW |= {"bf16-true": torch.bfloat16, "16-true": torch.float16}


def _x(batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _bytes(adapter: adapters.Adapter) -> int:
    return sum(t.numel() * t.element_size() for t in adapter.params.values())


@pytest.fixture(scope="module")
def reference() -> tuple[adapters.Adapter, torch.Tensor]:
    backbone = adapters.build(VIT)
    return backbone, backbone(_x())


@pytest.mark.parametrize("precision", list(LOW))
def test_each_setting_computes_in_its_dtype_and_stores_weights_as_it_says(
    reference, precision
) -> None:
    base, expected = reference
    low = adapters.build(VIT, precision=precision)
    assert low.spec == attrs.evolve(VIT, precision=precision)
    assert low.info["precision"] == precision
    y = low(_x())  # float32 images in, whatever the weights are stored in
    assert y.dtype == LOW[precision]
    floats = {t.dtype for t in low.params.values() if t.is_floating_point()}
    if precision.endswith("-true"):
        assert floats == {LOW[precision]}
        assert _bytes(low) * 2 == _bytes(base)  # the weights' memory halves
    else:
        assert floats == {torch.float32}
    cosine = torch.nn.functional.cosine_similarity(y.float(), expected, dim=-1)
    assert float(cosine.min()) > 0.99, cosine


def test_the_argument_replaces_the_spec_field_and_aliases_read_as_lightning() -> None:
    from_field = adapters.build(attrs.evolve(VIT, precision="bf16-true"))
    assert from_field.spec.precision == "bf16-true"
    assert from_field(_x()).dtype == torch.bfloat16
    assert adapters.build(from_field.spec, precision="32").spec.precision == "32-true"
    assert adapters.build(VIT, precision=16).spec.precision == "16-mixed"
    same = adapters.build(VIT, precision=None)  # None: the spec's own
    assert same.spec.precision == "32-true" and same(_x()).dtype == torch.float32


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("bf16-mixd", "Did you mean 'bf16-mixed'"),
        ("bfloat16", "does not say whether the weights are cast"),
        (64, "Expected one of 32-true, bf16-mixed"),
    ],
)
def test_a_bad_precision_is_one_error_naming_the_argument(value, says) -> None:
    with pytest.raises(adapters.BuildError, match=says) as err:
        adapters.build(VIT, precision=value)
    assert err.value.field == "precision"


def test_a_registry_name_takes_the_precision_to_its_entry() -> None:
    name = "universal/vit_tiny_patch16_224_random"
    low = adapters.build(specs.RegistrySpec(name, precision="bf16-true"))
    assert low.spec.precision == "bf16-true" and low.info["registry"] == name
    assert adapters.build(name, precision="16-true").spec.precision == "16-true"
    assert adapters.build(name).spec.precision == "32-true"


def test_entries_run_at_float32_and_record_what_their_authors_recommend() -> None:
    entries = builtin_entries()
    # eva's numbers need eva's setting: no entry changes the default itself
    assert {getattr(s, "precision", "32-true") for s in entries.values()} == {"32-true"}
    assert set(RECOMMENDED_PRECISION) <= set(entries)
    assert RECOMMENDED_PRECISION["pathology/mahmood_uni2_h"][0] == "bf16-mixed"
    assert RECOMMENDED_PRECISION["pathology/paige_virchow2"][0] == "16-mixed"
    assert RECOMMENDED_PRECISION["pathology/prov_gigapath"][0] == "16-mixed"
    spec = entries["pathology/mahmood_uni2_h"]
    line = precision_line(spec, "pathology/mahmood_uni2_h")
    assert line.startswith("32-true (recommended: bf16-mixed, TRIDENT"), line
    assert precision_line(attrs.evolve(spec, precision="bf16-mixed"), "x") == "bf16-mixed"


def test_a_record_without_a_precision_field_is_refused_a_low_one() -> None:
    @attrs.frozen
    class Plain:
        name: str = "x"

    assert with_precision(Plain(), "32-true") == Plain()
    with pytest.raises(adapters.BuildError, match="Plain has no precision field"):
        with_precision(Plain(), "bf16-true")


USERLIB = """
import flax.linen as nn
import jax.numpy as jnp
import torch

import adapters


class TypedFlax(nn.Module):
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(4, dtype=self.dtype, param_dtype=self.param_dtype)(x)


class UntypedFlax(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(4)(x.reshape(x.shape[0], -1))


def ready_adapter():
    w = torch.ones(3, 2)
    return adapters.Adapter(forward=lambda p, x: x @ p["w"], params={"w": w}, spec=None)
"""


@pytest.fixture(scope="module")
def userlib(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("userlib")
    (path / "fm_precision_lib.py").write_text(textwrap.dedent(USERLIB))
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(path))
    yield "fm_precision_lib"
    mp.undo()


@pytest.mark.parametrize(
    ("precision", "param", "out"),
    [("bf16-mixed", jnp.float32, jnp.bfloat16), ("16-true", jnp.float16, jnp.float16)],
)
def test_flax_sources_get_dtype_and_param_dtype(userlib, precision, param, out) -> None:
    spec = specs.FlaxSpec(module=f"{userlib}.TypedFlax", input_shape=(1, 3, 4, 4))
    base, low = adapters.build(spec), adapters.build(spec, precision=precision)
    assert {a.dtype for a in jax.tree_util.tree_leaves(low.params)} == {jnp.dtype(param)}
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 4))
    y = jax.jit(low.forward)(low.params, x)
    assert y.dtype == out
    np.testing.assert_allclose(np.asarray(y, np.float32), base(x), rtol=0, atol=0.05)


def test_flax_modules_without_dtype_fields_and_custom_forwards_are_refused(userlib) -> None:
    untyped = specs.FlaxSpec(module=f"{userlib}.UntypedFlax", input_shape=(1, 3, 4, 4))
    with pytest.raises(adapters.BuildError, match="has no dtype or param_dtype field"):
        adapters.build(untyped, precision="bf16-true")
    typed = specs.FlaxSpec(module=f"{userlib}.TypedFlax", init_args={"dtype": "float16"})
    with pytest.raises(adapters.BuildError, match="Set the precision in one place"):
        adapters.build(typed, precision="16-true")
    custom = specs.CustomSpec(load=f"{userlib}.ready_adapter")
    assert adapters.build(custom).spec == custom
    with pytest.raises(adapters.BuildError, match="cannot be told to run at bf16-mixed"):
        adapters.build(custom, precision="bf16-mixed")

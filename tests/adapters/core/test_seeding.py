"""Seeded builds (``adapters/_src/seeding.py``): one spec gives one set of random weights, in
every call and every process, a seed picks another set, and the caller's RNG is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch

import adapters
import specs
from adapters._src.app import backbone as cli_backbone
from adapters._src.app.weights import describe_weights

ROOT = Path(__file__).resolve().parents[3]
#: a random-weight timm ViT small enough to build in a blink
VIT = specs.TimmSpec(
    "vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={"img_size": 32, "patch_size": 8, "depth": 2, "num_classes": 0},
)


def _max_diff(a: adapters.Adapter, b: adapters.Adapter) -> float:
    assert a.params.keys() == b.params.keys()
    return max(float((a.params[k] - b.params[k]).abs().max()) for k in a.params)


def test_two_builds_of_a_random_spec_have_the_same_weights() -> None:
    a, b = adapters.build(VIT), adapters.build(VIT)
    assert _max_diff(a, b) == 0
    assert a.spec.seed == 0


def test_a_seed_picks_other_weights_and_the_adapter_records_it() -> None:
    zero, one = adapters.build(VIT), adapters.build(VIT, seed=1)
    assert _max_diff(zero, one) > 0.01
    assert one.spec == attrs.evolve(VIT, seed=1)
    from_field = adapters.build(specs.loads(specs.dumps(one.spec)))  # seed: 1 in the YAML
    assert "seed: 1" in specs.dumps(one.spec) and _max_diff(one, from_field) == 0
    assert _max_diff(zero, adapters.build(from_field.spec, seed=0)) == 0  # the argument wins


def test_a_build_leaves_the_callers_torch_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(8)
    torch.manual_seed(123)
    adapters.build(VIT)
    adapters.build(VIT, seed=7)
    torch.testing.assert_close(torch.rand(8), expected, rtol=0, atol=0)


def test_a_registry_name_takes_the_seed_to_its_entry() -> None:
    name = "universal/vit_tiny_patch16_224_random"
    zero, two = adapters.build(name), adapters.build(name, seed=2)
    assert (zero.spec.seed, two.spec.seed) == (0, 2)
    assert _max_diff(zero, two) > 0.01
    written = adapters.build(specs.loads(f"{{source: registry, model_name: {name}, seed: 2}}"))
    assert _max_diff(two, written) == 0


def test_a_user_source_without_a_seed_field_is_seeded_too() -> None:
    @attrs.frozen
    class NoiseSpec:
        dim: int
        transforms: tuple = ()

    def build_noise(spec: NoiseSpec) -> adapters.Adapter:
        w = torch.randn(spec.dim)  # torch's global generator, as nn.Module init uses it
        return adapters.Adapter(forward=lambda p, x: p["w"] * x, params={"w": w}, spec=spec)

    adapters.register_source(NoiseSpec, build_noise)
    try:
        a, b, c = (adapters.build(NoiseSpec(16), seed=s) for s in (None, None, 5))
    finally:
        from adapters._src.sources.table import unregister_source

        unregister_source(NoiseSpec)
    assert torch.equal(a.params["w"], b.params["w"])
    assert not torch.equal(a.params["w"], c.params["w"])


def test_a_flax_spec_takes_the_seed_argument() -> None:
    pytest.importorskip("flax")
    spec = specs.FlaxSpec("flax.linen.Dense", init_args={"features": 3}, input_shape=(1, 4))
    a, b = adapters.build(spec), adapters.build(spec, seed=3)
    assert b.spec.seed == 3
    assert float(abs(a.params["params"]["kernel"] - b.params["params"]["kernel"]).max()) > 0.01


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True, "0"])
def test_a_bad_seed_is_one_error_naming_it(bad) -> None:
    with pytest.raises(adapters.BuildError, match=r"^seed: not a seed\. .*Got"):
        adapters.build(VIT, seed=bad)
    with pytest.raises(specs.SpecError, match="seed"):
        attrs.evolve(VIT, seed=bad)


def test_an_eva_config_builds_with_seed_0(tmp_path) -> None:
    path = tmp_path / "eva.yaml"
    path.write_text(
        "backbone:\n"
        "  class_path: eva.vision.models.wrappers.TimmModel\n"
        "  init_args:\n"
        "    model_name: vit_tiny_patch16_224\n"
        "    pretrained: false\n"
        "    model_kwargs: {img_size: 32, patch_size: 8, depth: 2, num_classes: 0}\n"
    )
    spec = specs.load(path)
    assert spec.seed == 0
    assert _max_diff(adapters.build(spec), adapters.build(VIT)) == 0


def test_the_cli_weights_line_is_true(tmp_path) -> None:
    """The CLI says "random (seed N)": N is the spec's seed (default 0) unless the command
    passes one (probe's --seed), and the weights are that seed's."""
    path = tmp_path / "vit.yaml"
    specs.dump(attrs.evolve(VIT, seed=5), path)
    built, _ = cli_backbone.build_backbone(str(path), "torch", device="cpu")
    assert describe_weights(built) == "random (seed 5)"
    assert _max_diff(built, adapters.build(VIT, seed=5)) == 0
    again, _ = cli_backbone.build_backbone(str(path), "torch", seed=0, device="cpu")
    assert describe_weights(again) == "random (seed 0)"
    assert _max_diff(again, adapters.build(VIT)) == 0


_LOWER = """
import torch, adapters, specs
spec = specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 8, "out_features": 4})
backbone = adapters.build(spec, runtime="jax", example_input=torch.zeros(2, 8))
print(backbone.info["cache"], float(backbone.params["weight"].sum()))
"""


@pytest.mark.slow
def test_the_jax_cache_hits_in_a_new_process_for_random_weights(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FM_ADAPTERS_CACHE": str(tmp_path / "cache")}
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", _LOWER],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.split())
    (first, w1), (second, w2) = runs
    assert (first, second) == ("miss", "hit")
    assert w1 == w2
    assert len(list((tmp_path / "cache" / "jax").iterdir())) == 1


@pytest.mark.slow
def test_runtime_jax_equals_runtime_torch_built_apart() -> None:
    """Two builds of one random-weight spec, one lowered to JAX, agree without passing params."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    lowered = adapters.build(VIT, runtime="jax", example_input=torch.zeros(2, 3, 32, 32))
    reference = adapters.build(VIT)
    with torch.inference_mode():
        expected = reference(x).numpy()
    np.testing.assert_allclose(np.asarray(lowered(x.numpy())), expected, rtol=1e-4, atol=1e-4)

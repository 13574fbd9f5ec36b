"""``runtime="jax"`` for an ONNX source (issue 25 items 1-2): the graph lowered into JAX, checked
against ONNX Runtime on the first build, cached by the file's digest, and trainable with a Flax
head through ``jax.grad`` in one jit."""

from __future__ import annotations

import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import onnx
import optax
import pytest
import torch
from onnx import numpy_helper

import adapters
import specs
from interop._src.onnx_lowering.ops import TABLE
from interop._src.onnx_lowering.registry import OpDef

SPEC = specs.TimmSpec(
    model_name="vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={"img_size": 32, "depth": 2, "num_classes": 0},
)


def x_image(batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the ONNX spec of a tiny ViT, its ONNX Runtime adapter)."""
    where = tmp_path_factory.mktemp("onnx_jax")
    onnx_spec = adapters.export_onnx(SPEC, where / "vit.onnx", torch.from_numpy(x_image(2)))
    return onnx_spec, adapters.build(onnx_spec)


def test_build_matches_onnxruntime_and_the_second_build_is_a_cache_hit(exported, tmp_path) -> None:
    onnx_spec, ort_adapter = exported
    first = adapters.lower_to_jax(ort_adapter, cache_dir=tmp_path)
    assert first.framework == "jax" and first.info["cache"] == "miss"
    again = adapters.build(onnx_spec, runtime="jax")  # the default cache: a fresh entry
    hit = adapters.lower_to_jax(ort_adapter, cache_dir=tmp_path)
    assert hit.info["cache"] == "hit"
    for batch in (1, 4):  # the graph's free batch axis stays free
        x = x_image(batch, seed=batch)
        want = ort_adapter(x)
        for adapter in (first, again, hit):
            np.testing.assert_allclose(np.asarray(adapter(x)), want, rtol=1e-4, atol=1e-4)


def test_the_cache_is_keyed_by_content_not_place(exported, tmp_path) -> None:
    onnx_spec, _ = exported
    copy = tmp_path / "copy.onnx"
    shutil.copy(onnx_spec.path, copy)
    adapters.lower_to_jax(adapters.build(onnx_spec), cache_dir=tmp_path / "c")
    moved = adapters.lower_to_jax(
        adapters.build(specs.OnnxSpec(path=str(copy))), cache_dir=tmp_path / "c"
    )
    assert moved.info["cache"] == "hit"  # the same bytes elsewhere
    model = onnx.load(copy)
    init = next(t for t in model.graph.initializer if numpy_helper.to_array(t).dtype == np.float32)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 2, init.name))
    onnx.save(model, copy)
    edited = adapters.lower_to_jax(
        adapters.build(specs.OnnxSpec(path=str(copy))), cache_dir=tmp_path / "c"
    )
    assert edited.info["cache"] == "miss"  # other weights, another entry


def test_params_are_the_initializers_sharing_memory(exported, tmp_path) -> None:
    onnx_spec, ort_adapter = exported
    low = adapters.lower_to_jax(ort_adapter, cache_dir=tmp_path)
    graph = low.module
    names = {t.name for t in onnx.load(onnx_spec.path).graph.initializer}
    assert set(low.params) <= names and len(low.params) > 0
    for k, p in low.params.items():
        assert p.unsafe_buffer_pointer() == graph.arrays[k].ctypes.data, k


def test_vmap_and_jax_export_of_the_built_adapter(exported) -> None:
    onnx_spec, ort_adapter = exported
    low = adapters.build(onnx_spec, runtime="jax")
    many = np.stack([x_image(2, seed=s) for s in range(3)])
    stacked = jax.vmap(low.forward, in_axes=(None, 0))(low.params, many)
    np.testing.assert_allclose(np.asarray(stacked[2]), ort_adapter(many[2]), rtol=1e-4, atol=1e-4)
    art = jax.export.export(jax.jit(low.forward))(low.params, many[0])
    restored = jax.export.deserialize(art.serialize())
    np.testing.assert_allclose(
        np.asarray(restored.call(low.params, many[1])), ort_adapter(many[1]), rtol=1e-4, atol=1e-4
    )


class Head(nn.Module):
    @nn.compact
    def __call__(self, h):
        return nn.Dense(3)(h)


def test_a_flax_head_trains_through_the_onnx_backbone_in_one_jit(exported) -> None:
    onnx_spec, _ = exported
    low = adapters.build(onnx_spec, runtime="jax")
    x, y = x_image(batch=6), jnp.array([0, 1, 2, 0, 1, 2])
    head = Head()
    params = {"backbone": low.params, "head": head.init(jax.random.PRNGKey(0), jnp.zeros((1, 192)))}
    opt = optax.sgd(1e-2)
    state = opt.init(params)

    def loss(p, x, y):
        logits = head.apply(p["head"], low.forward(p["backbone"], x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(p, s, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, value, g

    new, _, before, grads = step(params, state, x, y)
    assert float(loss(new, x, y)) < float(before)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads["backbone"]))


def test_missing_ops_are_one_build_error(exported, tmp_path) -> None:
    onnx_spec, _ = exported
    model = onnx.load(onnx_spec.path)
    x = model.graph.input[0].name
    # ops ONNX Runtime has and the table does not, on a side branch ONNX Runtime prunes
    model.graph.node.extend(
        [
            onnx.helper.make_node("NonZero", [x], ["nz_a"], name="side_nz_a"),
            onnx.helper.make_node("NonZero", [x], ["nz_b"], name="side_nz_b"),
            onnx.helper.make_node("Det", [x], ["det"], name="side_det"),
        ]
    )
    bad = tmp_path / "bad.onnx"
    onnx.save(model, bad)
    with pytest.raises(adapters.BuildError, match=r"^runtime: ") as err:
        adapters.build(specs.OnnxSpec(path=str(bad)), runtime="jax")
    text = str(err.value)
    assert "2 op type(s) outside the table" in text
    assert "NonZero (2 node(s): 'side_nz_a', 'side_nz_b')" in text and "Det (1 node(s)" in text
    assert "ONNX Runtime" in text  # the alternatives


def test_train_mode_is_refused(exported) -> None:
    with pytest.raises(adapters.BuildError, match=r"^train: .*one mode"):
        adapters.build(exported[0], runtime="jax", train=True)


def test_a_lowering_that_disagrees_with_onnxruntime_fails_the_first_build(
    exported, tmp_path, monkeypatch
) -> None:
    onnx_spec, ort_adapter = exported
    gelu = (
        TABLE["Erf"]
        if "Erf" in {n.op_type for n in onnx.load(onnx_spec.path).graph.node}
        else TABLE["Gelu"]
    )
    name = next(k for k, v in TABLE.items() if v is gelu)
    monkeypatch.setitem(TABLE, name, OpDef(lambda node, x: x, (), "jax", {}, None))  # a wrong op
    with pytest.raises(adapters.ParityError, match="does not match ONNX Runtime"):
        adapters.lower_to_jax(ort_adapter, cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name != "xla"] == []  # nothing cached

"""ONNX graphs lowered to JAX (``interop.onnx_lowering``): compared with ONNX Runtime on the
same graph; params share the loaded arrays' memory; ``jit`` / ``grad`` / ``vmap`` /
``jax.export`` with a symbolic batch work; what cannot be lowered is one error naming it all."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from interop.onnx_lowering import OnnxLoweringError, lower_onnx, shape_inputs

RNG = np.random.default_rng(0)


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(a, name)


def conv_net(opset: int = 17) -> onnx.ModelProto:
    """Conv -> Relu -> GlobalAveragePool -> Reshape(batch from Shape, -1) -> Gemm, with a free
    batch axis: the shape arithmetic torch.onnx.export writes for a dynamic batch."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Shape", ["p"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="cat", axis=0),
        helper.make_node("Reshape", ["p", "target"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    inits = [
        _init("w", RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        _init("b", RNG.standard_normal(4).astype(np.float32)),
        _init("fc_w", RNG.standard_normal((5, 4)).astype(np.float32)),
        _init("fc_b", RNG.standard_normal(5).astype(np.float32)),
        _init("zero", np.array(0, np.int64)),
        _init("zero1", np.array([0], np.int64)),
        _init("minus1", np.array([-1], np.int64)),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def ort_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_matches_onnxruntime_under_jit_for_two_batch_sizes() -> None:
    model = conv_net()
    forward, params, _ = lower_onnx(model)
    assert sorted(params) == ["b", "fc_b", "fc_w", "w"]  # integer initializers are constants
    run = jax.jit(forward)
    for n in (1, 3):
        x = RNG.standard_normal((n, 3, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(
            np.asarray(run(params, x)), ort_run(model, x), rtol=1e-5, atol=1e-5
        )


def test_params_share_memory_with_the_loaded_arrays() -> None:
    _, params, graph = lower_onnx(conv_net())
    for name, p in params.items():
        assert p.unsafe_buffer_pointer() == graph.arrays[name].ctypes.data, name


def test_grad_vmap_and_export_with_a_symbolic_batch() -> None:
    model = conv_net()
    forward, params, _ = lower_onnx(model)
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(forward(p, x) ** 2)))(params)
    assert set(grads) == set(params) and all(bool(jnp.all(jnp.isfinite(g))) for g in grads.values())
    assert float(jnp.abs(grads["w"]).max()) > 0
    many = RNG.standard_normal((4, 2, 3, 8, 8)).astype(np.float32)
    stacked = jax.vmap(forward, in_axes=(None, 0))(params, many)
    np.testing.assert_allclose(
        np.asarray(stacked[1]), ort_run(model, many[1]), rtol=1e-5, atol=1e-5
    )
    (b,) = jax.export.symbolic_shape("b")
    p_spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()}
    exported = jax.export.export(jax.jit(forward))(
        p_spec, jax.ShapeDtypeStruct((b, 3, 8, 8), jnp.float32)
    )
    x5 = RNG.standard_normal((5, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(exported.call(params, x5)), ort_run(model, x5), rtol=1e-5, atol=1e-5
    )


def test_every_missing_op_type_is_named_with_its_nodes_in_one_error() -> None:
    nodes = [
        helper.make_node("NonZero", ["x"], ["a"], name="nz1"),
        helper.make_node("NonZero", ["x"], ["b"], name="nz2"),
        helper.make_node("Unique", ["x"], ["c"], name="uniq"),
        helper.make_node("FusedGemm", ["x", "x"], ["d"], name="fused", domain="com.microsoft"),
        helper.make_node("Relu", ["x"], ["y"], name="fine"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    with pytest.raises(OnnxLoweringError) as err:
        lower_onnx(model)
    text = str(err.value)
    assert "3 op type(s) outside the table" in text
    assert "NonZero (2 node(s): 'nz1', 'nz2')" in text
    assert "Unique (1 node(s): 'uniq')" in text and "com.microsoft.FusedGemm" in text
    assert "'fine'" not in text


def test_an_opset_older_than_13_is_refused_with_the_fix() -> None:
    with pytest.raises(OnnxLoweringError, match=r"opset 11 .* opset 13 and newer.*convert_version"):
        lower_onnx(conv_net(opset=11))


def test_a_shape_computed_from_data_is_refused_unless_bound() -> None:
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(
        OnnxLoweringError, match=r"node 'reshape' \(Reshape\): input 1 \('shape'\) decides a shape"
    ):
        lower_onnx(model)
    assert shape_inputs(model) == ["shape"]
    forward, _, _ = lower_onnx(model, constants={"shape": np.array([3, 2], np.int64)})
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(np.asarray(forward({}, x)), x.reshape(3, 2))


def test_a_refused_use_is_listed_with_the_node() -> None:
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], name="pool", kernel_shape=[2, 2])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, [1, 1, 3, 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(
        OnnxLoweringError, match=r"node 'pool' \(MaxPool\): MaxPool's Indices output"
    ):
        lower_onnx(model)


def test_wrong_inputs_and_params_are_named() -> None:
    forward, params, _ = lower_onnx(conv_net())
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"takes 1 input\(s\) \['x'\], got 2"):
        forward(params, (x, x))
    with pytest.raises(ValueError, match=r"exactly the graph's inputs \['x'\]"):
        forward(params, {"image": x})
    with pytest.raises(KeyError, match=r"params lacks 1 initializer"):
        forward({k: v for k, v in params.items() if k != "w"}, x)


def test_an_unreadable_file_is_one_error(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(OnnxLoweringError, match=r"bad\.onnx. is not an ONNX model"):
        lower_onnx(bad)
    with pytest.raises(OnnxLoweringError, match=r"cannot read the ONNX model .*missing\.onnx"):
        lower_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("cubic", {"cubic_coeff_a": -0.5, "exclude_outside": 1, "antialias": 1}),
        ("linear", {"exclude_outside": 1, "antialias": 1}),
        ("cubic", {"cubic_coeff_a": -0.75}),
        ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    ],
    ids=["bicubic-aa", "bilinear-aa", "bicubic", "nearest"],
)
def test_resize_as_torch_exports_it_matches_onnxruntime(mode, extra) -> None:
    """What torch.onnx.export writes for F.interpolate (antialiased too: ViTs resample their
    position embeddings so), lowered through the torch table's interpolation matrices."""
    attrs = {"mode": mode, "coordinate_transformation_mode": "half_pixel", **extra}
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 14, 14])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_init("sizes", np.array([2, 3, 5, 23], np.int64))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    forward, _, _ = lower_onnx(model)
    x = RNG.standard_normal((2, 3, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(forward({}, x)), ort_run(model, x), rtol=1e-5, atol=1e-5)

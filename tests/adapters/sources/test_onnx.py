"""`build_onnx`: real ONNX Runtime sessions over tiny models exported with torch.onnx.export.

Every numerical claim is checked against the plain torch call; every zero-copy claim by
comparing the caller's buffer pointer with the pointer ONNX Runtime was bound to / wrote to.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import interop
import specs
from adapters._src.errors import BuildError
from adapters._src.sources.onnx import serve as onnx_src
from adapters._src.sources.onnx.serve import build_onnx
from adapters._src.sources.onnx.session import OnnxInputError

#: exports real models to ONNX (seconds each): out of the fast lane (-m 'not slow')
pytestmark = pytest.mark.slow

ATOL = 1e-4


class Multi(torch.nn.Module):
    """Two inputs by name, two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(8, 4)
        self.b = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(x) + self.b(z), self.a(x) * self.b(z)


class TwoOut(torch.nn.Module):
    """One input, two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.a(x)
        return h, torch.relu(h) * 2


def _cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 4, 3, stride=2),
        torch.nn.Flatten(),
    )


# name -> (module factory, example inputs, input names, output names)
MODELS = {
    "linear": (lambda: torch.nn.Linear(8, 4), ((3, 8),), ["x"], ["y"]),
    "cnn": (_cnn, ((2, 3, 12, 12),), ["x"], ["y"]),
    "tokens": (lambda: torch.nn.Linear(8, 4), ((2, 5, 8),), ["x"], ["y"]),
    "multi": (Multi, ((3, 8), (3, 6)), ["x", "z"], ["sum", "prod"]),
    "two_out": (TwoOut, ((3, 8),), ["x"], ["y", "h"]),
}


def _export(name: str, directory: Path) -> tuple[torch.nn.Module, str]:
    make, shapes, inputs, outputs = MODELS[name]
    torch.manual_seed(0)
    module = make().eval()
    args = tuple(torch.randn(s) for s in shapes)
    batch = torch.export.Dim("batch")
    path = str(directory / f"{name}.onnx")
    torch.onnx.export(
        module,
        args,
        path,
        input_names=inputs,
        output_names=outputs,
        dynamic_shapes=tuple({0: batch} for _ in args),
        dynamo=True,
        verbose=False,
    )
    return module, path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[torch.nn.Module, str]]:
    directory = tmp_path_factory.mktemp("onnx_models")
    out = {}
    for name in MODELS:
        if name == "multi":
            # the exporter warns that the second input's batch axis name is unused (it is
            # the same axis as the first input's); that is expected here
            with pytest.warns(UserWarning, match="will not be used"):
                out[name] = _export(name, directory)
        else:
            out[name] = _export(name, directory)
    return out


def _torch_ref(module: torch.nn.Module, *xs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(*xs)


FRAMEWORKS = {
    "torch": lambda t: t,
    "numpy": lambda t: t.numpy(),
    "jax": lambda t: jnp.asarray(t.numpy()),
}
OUT_TYPES = {"torch": torch.Tensor, "numpy": np.ndarray, "jax": type(jnp.zeros(1))}


def _np(a: object) -> np.ndarray:
    return np.asarray(interop.to_numpy(a))


# ---------------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("name", ["linear", "cnn", "tokens"])
def test_matches_torch_in_the_inputs_framework(models, name, framework):
    module, path = models[name]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    _, shapes, _, _ = MODELS[name]
    x = torch.randn(5, *shapes[0][1:])
    y = adapter.forward({}, FRAMEWORKS[framework](x))
    assert isinstance(y, OUT_TYPES[framework])
    np.testing.assert_allclose(_np(y), _torch_ref(module, x).numpy(), atol=ATOL, rtol=0)
    assert adapter.params == {} and adapter.framework == "onnx"
    assert isinstance(adapter.module, ort.InferenceSession)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.integers(1, 9), framework=st.sampled_from(list(FRAMEWORKS)))
def test_dynamic_batch(models, batch, framework):
    module, path = models["linear"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    x = torch.randn(batch, 8)
    y = adapter(FRAMEWORKS[framework](x))
    assert tuple(y.shape) == (batch, 4)
    np.testing.assert_allclose(_np(y), _torch_ref(module, x).numpy(), atol=ATOL, rtol=0)


@pytest.mark.parametrize("style", ["dict", "tuple"])
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_several_inputs_and_outputs(models, style, framework):
    module, path = models["multi"]
    adapter = build_onnx(specs.OnnxSpec(path=path), outputs=style)
    x, z = torch.randn(4, 8), torch.randn(4, 6)
    conv = FRAMEWORKS[framework]
    got = adapter({"x": conv(x), "z": conv(z)}) if style == "dict" else adapter((conv(x), conv(z)))
    want = _torch_ref(module, x, z)
    if style == "dict":
        assert list(got) == ["sum", "prod"]
        got = tuple(got.values())
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, OUT_TYPES[framework])
        np.testing.assert_allclose(_np(g), w.numpy(), atol=ATOL, rtol=0)


# strided layouts -> the values they hold; raw-pointer binding of these would read garbage
STRIDED = {
    "torch_transposed": lambda: torch.randn(8, 6).T,
    "torch_step_slice": lambda: torch.randn(12, 8)[::2],
    "torch_column_slice": lambda: torch.randn(6, 16)[:, 3:11],
    "numpy_transposed": lambda: np.random.default_rng(0).standard_normal((8, 6), "float32").T,
    "numpy_negative_stride": lambda: np.random.default_rng(1).standard_normal((6, 8), "float32")[
        ::-1
    ],
    "numpy_fortran": lambda: np.asfortranarray(
        np.random.default_rng(2).standard_normal((6, 8), "float32")
    ),
}


@pytest.mark.parametrize("layout", list(STRIDED))
def test_non_contiguous_input_gives_correct_numbers(models, layout):
    module, path = models["linear"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    x = STRIDED[layout]()
    if isinstance(x, np.ndarray):
        assert not x.flags.c_contiguous
        dense = torch.from_numpy(np.ascontiguousarray(x))
    else:
        assert not x.is_contiguous()
        dense = x.contiguous()
    np.testing.assert_allclose(
        _np(adapter(x)), _torch_ref(module, dense).numpy(), atol=ATOL, rtol=0
    )


def test_spec_transforms_run_after_the_session(models):
    module, path = models["tokens"]
    adapter = build_onnx(specs.OnnxSpec(path=path, transforms=[specs.ClsToken()]))
    x = torch.randn(3, 5, 8)
    y = adapter(x)
    assert tuple(y.shape) == (3, 4)
    np.testing.assert_allclose(y.numpy(), _torch_ref(module, x)[:, 0].numpy(), atol=ATOL, rtol=0)


def test_session_options_follow_the_spec(models):
    _, path = models["linear"]
    spec = specs.OnnxSpec(path=path, intra_op_num_threads=1, graph_optimization_level="basic")
    options = build_onnx(spec).module.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    key = "session.intra_op.allow_spinning"
    with pytest.raises(RuntimeError, match="does not have configuration"):
        options.get_session_config_entry(key)  # unset by default
    options = build_onnx(spec, config={key: "0"}).module.get_session_options()
    assert options.get_session_config_entry(key) == "0"


def test_device_cuda_falls_back_only_when_the_spec_lists_the_cpu_provider(models):
    _, path = models["linear"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the fallback rule is tested on CPU-only builds")
    with pytest.raises(
        BuildError, match=r"device: .*no usable CUDA provider.*CPUExecutionProvider"
    ):
        build_onnx(specs.OnnxSpec(path=path, device="cuda"))
    spec = specs.OnnxSpec(
        path=path, device="cuda", providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    adapter = build_onnx(spec)
    assert adapter.info["providers"] == ("CPUExecutionProvider",)
    assert adapter.info["device"] == "cpu"


# ---------------------------------------------------------------------------------------------
# zero copy: pointers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("batch", [1, 4])
def test_input_bound_in_place_and_output_shared(models, framework, batch):
    module, path = models["cnn"]
    session = build_onnx(specs.OnnxSpec(path=path)).module
    x_torch = torch.randn(batch, 3, 12, 12)
    x = FRAMEWORKS[framework](x_torch)
    binding, inputs = onnx_src.bind(session, {"x": x}, ["y"])
    # ONNX Runtime was handed the caller's own buffer
    assert inputs["x"].data_ptr() == interop.data_ptr(x)
    session.run_with_iobinding(binding)
    values, (y,) = onnx_src.collect(binding, framework)
    # the returned array is ONNX Runtime's output buffer itself
    assert isinstance(y, OUT_TYPES[framework])
    assert interop.data_ptr(y) == values[0].data_ptr()
    np.testing.assert_allclose(_np(y), _torch_ref(module, x_torch).numpy(), atol=ATOL, rtol=0)


# one torch tensor -> whether forward takes the one-CPU-tensor fast path (`_run_torch_cpu`)
TORCH_INPUTS = {
    "contiguous": (lambda: torch.randn(4, 8), True),
    "batch_1": (lambda: torch.randn(1, 8), True),
    "offset_view": (lambda: torch.randn(6, 8)[2:], True),
    "transposed": (lambda: torch.randn(8, 4).T, False),
    "step_slice": (lambda: torch.randn(8, 8)[::2], False),
    "requires_grad": (lambda: torch.randn(4, 8, requires_grad=True), False),
    "parameter": (lambda: torch.nn.Parameter(torch.randn(4, 8)), False),
}


@pytest.mark.parametrize("style", ["tuple", "dict"])
@pytest.mark.parametrize("name", ["linear", "two_out"])
@pytest.mark.parametrize("case", list(TORCH_INPUTS))
def test_torch_fast_path_binds_in_place_and_falls_back_when_it_must(
    models, monkeypatch, case, name, style
):

    module, path = models[name]
    adapter = build_onnx(specs.OnnxSpec(path=path), outputs=style)
    make, fast = TORCH_INPUTS[case]
    x = make()
    calls = []
    real = onnx_src._run_torch_cpu

    def spy(run, input_name, a, output_names):
        value, result, ys = real(run, input_name, a, output_names)
        calls.append((value.data_ptr(), [r.data_ptr() for r in result], [y.data_ptr() for y in ys]))
        return value, result, ys

    monkeypatch.setattr(onnx_src, "_run_torch_cpu", spy)
    for _ in range(2):  # the second call takes the cached signature check
        got = adapter(x)
    assert len(calls) == (2 if fast else 0)
    for bound, ort_outputs, returned in calls:
        assert bound == x.data_ptr()  # ONNX Runtime read the caller's buffer
        assert returned == ort_outputs  # and the tensors returned are its output buffers
    want = _torch_ref(module, x.detach().contiguous())
    if name == "linear":
        got, want = (got,), (want,)
    elif style == "dict":
        assert list(got) == ["y", "h"]
        got = tuple(got.values())
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, torch.Tensor) and not g.requires_grad
        np.testing.assert_allclose(g.numpy(), w.numpy(), atol=ATOL, rtol=0)


def test_torch_fast_path_checks_each_new_shape(models):
    _, path = models["linear"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    adapter(torch.randn(3, 8))  # cached as checked: (float32, (3, 8))
    with pytest.raises(OnnxInputError, match="axis 1 must be 8") as info:
        adapter(torch.randn(3, 9))
    assert LINEAR_SIG in str(info.value)
    with pytest.raises(TypeError, match="expected dtype float32, got float64"):
        adapter(torch.randn(3, 8, dtype=torch.float64))
    assert tuple(adapter(torch.randn(3, 8)).shape) == (3, 4)


def test_strided_input_is_bound_through_a_contiguous_copy(models):
    _, path = models["linear"]
    session = build_onnx(specs.OnnxSpec(path=path)).module
    x = torch.randn(8, 5).T
    _, inputs = onnx_src.bind(session, {"x": x}, ["y"])
    assert inputs["x"].data_ptr() != x.data_ptr()


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_preallocated_outputs_are_written_in_place(models, framework):
    module, path = models["multi"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    x, z = torch.randn(3, 8), torch.randn(3, 6)
    conv = FRAMEWORKS[framework] if framework != "jax" else FRAMEWORKS["numpy"]
    out = (conv(torch.zeros(3, 4)), conv(torch.zeros(3, 4)))
    ptrs = [interop.data_ptr(o) for o in out]
    got = adapter.forward({}, {"x": conv(x), "z": conv(z)}, out=out)
    assert [interop.data_ptr(g) for g in got] == ptrs
    for g, w in zip(got, _torch_ref(module, x, z), strict=True):
        np.testing.assert_allclose(_np(g), w.numpy(), atol=ATOL, rtol=0)


def test_outputs_outlive_the_binding(models):
    module, path = models["cnn"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    x = torch.randn(2, 3, 12, 12)
    ys = [adapter(x) for _ in range(3)]
    gc.collect()
    for y in ys:
        np.testing.assert_allclose(y.numpy(), _torch_ref(module, x).numpy(), atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------------


def test_one_session_many_threads(models):
    module, path = models["cnn"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    inputs = [torch.randn(1 + i % 3, 3, 12, 12) for i in range(24)]
    want = [_torch_ref(module, x) for x in inputs]
    got: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(k: int) -> None:
        try:
            start.wait()
            for i in range(k, len(inputs), 4):
                got[i] = adapter(inputs[i])
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, w in enumerate(want):
        np.testing.assert_allclose(got[i].numpy(), w.numpy(), atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------
# bad input: one clear error that prints the signature
# ---------------------------------------------------------------------------------------------

LINEAR_SIG = "x: float32[batch, 8]"
BAD_INPUTS = {
    "wrong_dtype": (lambda: torch.randn(3, 8, dtype=torch.float64), TypeError, "dtype float32"),
    "wrong_dtype_int": (lambda: np.ones((3, 8), np.int64), TypeError, "got int64"),
    "wrong_rank": (lambda: torch.randn(8), OnnxInputError, "expected rank 2"),
    "wrong_fixed_dim": (lambda: torch.randn(3, 9), OnnxInputError, "axis 1 must be 8"),
    "missing_key": (lambda: {"z": torch.randn(3, 8)}, OnnxInputError, r"missing \['x'\]"),
    "extra_key": (
        lambda: {"x": torch.randn(3, 8), "w": torch.randn(3, 8)},
        OnnxInputError,
        r"unexpected \['w'\]",
    ),
    "too_many_positional": (
        lambda: (torch.randn(3, 8), torch.randn(3, 8)),
        OnnxInputError,
        "2 positional inputs",
    ),
    "nested_list": (lambda: [[0.0] * 8], TypeError, "expected a torch.Tensor.*got builtins.list"),
    "python_scalar": (lambda: 3.0, TypeError, "expected a torch.Tensor"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_prints_the_signature(models, case):
    _, path = models["linear"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    make, error, match = BAD_INPUTS[case]
    with pytest.raises(error, match=match) as info:
        adapter(make())
    assert LINEAR_SIG in str(info.value)


def test_mixed_frameworks_and_params_are_refused(models):
    _, path = models["multi"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    with pytest.raises(OnnxInputError, match=r"mix frameworks \['numpy', 'torch'\]"):
        adapter({"x": torch.randn(2, 8), "z": np.zeros((2, 6), np.float32)})
    with pytest.raises(OnnxInputError, match=r"takes 2 inputs.*x: float32.*z: float32"):
        adapter(torch.randn(2, 8))
    with pytest.raises(ValueError, match="no params"):
        adapter.forward({"w": torch.zeros(1)}, {"x": torch.randn(2, 8), "z": torch.randn(2, 6)})


def test_mismatched_dynamic_axes_are_translated(models):
    _, path = models["multi"]
    adapter = build_onnx(specs.OnnxSpec(path=path))
    with pytest.raises(OnnxInputError, match=r"axis 'batch' is 2 in input 'x' but 3 in input 'z'"):
        adapter({"x": torch.randn(2, 8), "z": torch.randn(3, 6)})


def _truncated(models, tmp_path: Path) -> str:
    data = Path(models["cnn"][1]).read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


BAD_FILES = {
    "missing": (lambda m, d: str(d / "nope.onnx"), "no ONNX file at"),
    "directory": (lambda m, d: str(d), "is a directory"),
    "garbage": (
        lambda m, d: (d / "g.onnx").write_bytes(b"not a model") and str(d / "g.onnx"),
        "cannot load",
    ),
    "truncated": (_truncated, "cannot load"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_names_the_path(models, tmp_path, case):
    make, match = BAD_FILES[case]
    path = make(models, tmp_path)
    with pytest.raises(BuildError, match=match) as info:
        build_onnx(specs.OnnxSpec(path=path))
    assert path in str(info.value) and str(info.value).startswith("path:")


def test_unknown_provider_suggests_the_spelling(models):
    _, path = models["linear"]
    with pytest.raises(BuildError, match="Did you mean 'CPUExecutionProvider'"):
        build_onnx(specs.OnnxSpec(path=path, providers=["CPUExecutionProvidr"]))
    with pytest.raises(TypeError, match="OnnxSpec"):
        build_onnx(specs.TimmSpec("vit_tiny_patch16_224"))  # type: ignore[arg-type]


def test_runtime_failures_are_translated(tmp_path):
    # Two independently named axes the graph then adds: only ONNX Runtime can see the clash.
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["m"]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [None])],
    )
    path = tmp_path / "add.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    adapter = build_onnx(specs.OnnxSpec(path=str(path)))
    a, b = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    np.testing.assert_array_equal(adapter({"a": a, "b": b}), a + b)
    with pytest.raises(OnnxInputError, match=r"ONNX Runtime failed.*a: float32\[n\], b: float32"):
        adapter({"a": np.ones(2, np.float32), "b": np.ones(3, np.float32)})

"""`export_onnx` and `parity`: real exports of tiny torch adapters, read back by ONNX Runtime."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import adapters
import specs
from adapters._src.errors import BuildError
from adapters._src.runtimes.onnxruntime.export import export_adapter, export_onnx
from adapters._src.runtimes.outputs import flatten, unflatten
from adapters._src.runtimes.parity import ParityReport, parity
from adapters._src.sources.onnx.serve import build_onnx
from adapters._src.sources.onnx.session import OnnxInputError
from adapters._src.torch_module import torch_adapter

#: exports real models to ONNX (seconds each): out of the fast lane (-m 'not slow')
pytestmark = pytest.mark.slow

ATOL = 1e-4

VIT = specs.TimmSpec(
    "vit_tiny_patch16_224",
    pretrained=False,
    model_kwargs={"img_size": 32, "patch_size": 8, "num_classes": 0},
    transforms=[specs.L2Normalize()],
)


@pytest.fixture(scope="module")
def vit(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[adapters.Adapter, specs.OnnxSpec, adapters.Adapter]:
    torch.manual_seed(0)
    adapter = adapters.build(VIT)
    path = tmp_path_factory.mktemp("vit") / "vit.onnx"
    # batch 1, as the CLI passes it: traced at batch 2 so that the batch stays dynamic
    onnx_spec = export_onnx(adapter, path, torch.randn(1, 3, 32, 32))
    return adapter, onnx_spec, build_onnx(onnx_spec)


FRAMEWORKS = {
    "torch": lambda t: t,
    "numpy": lambda t: t.numpy(),
    "jax": lambda t: jnp.asarray(t.numpy()),
}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("batch", [1, 3])
def test_vit_tiny_with_transforms_matches_torch(vit, framework, batch):
    adapter, onnx_spec, served = vit
    assert onnx_spec.path == served.spec.path
    assert served.info["inputs"][0].shape == ("batch", 3, 32, 32)
    x = torch.randn(batch, 3, 32, 32)
    y = served(FRAMEWORKS[framework](x))
    with torch.no_grad():
        want = adapter(x)
    assert tuple(y.shape) == (batch, 192)
    np.testing.assert_allclose(np.asarray(y), want.numpy(), atol=ATOL, rtol=0)
    # the L2Normalize transform is inside the graph
    np.testing.assert_allclose(np.linalg.norm(np.asarray(y), axis=-1), 1.0, atol=1e-5)


def test_parity_report_of_an_export(vit):
    adapter, _, served = vit
    inputs = [torch.randn(2, 3, 32, 32), torch.randn(5, 3, 32, 32)]
    report = adapters.parity(served, adapter, inputs)
    assert isinstance(report, ParityReport)
    assert report.n_inputs == 2 and report.ok(ATOL, 0)
    assert 0 < report.max_abs < ATOL  # float32 kernels differ a little; never exactly
    assert report.outputs[0].name == "output" and report.outputs[0].shape == (5, 192)
    assert "max abs diff" in str(report)


def test_export_a_spec_directly(tmp_path):
    spec = specs.ModuleSpec("torch.nn.Linear", init_args={"in_features": 8, "out_features": 4})
    torch.manual_seed(1)
    reference = adapters.build(spec)
    torch.manual_seed(1)  # the same random init for the build inside export_onnx
    onnx_spec = export_onnx(spec, tmp_path / "lin.onnx", np.zeros((2, 8), np.float32))
    assert onnx_spec == specs.OnnxSpec(path=str(tmp_path / "lin.onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin.onnx"]  # nothing else left
    x = torch.randn(6, 8)
    assert parity(build_onnx(onnx_spec), reference, x).ok(ATOL, 0)


def test_fixed_batch(tmp_path):
    adapter = torch_adapter(torch.nn.Linear(8, 4), None)
    served = build_onnx(export_onnx(adapter, tmp_path / "f.onnx", torch.randn(3, 8), False))
    assert served.info["inputs"][0].shape == (3, 8)
    np.testing.assert_allclose(served(torch.ones(3, 8)), adapter(torch.ones(3, 8)), atol=ATOL)
    with pytest.raises(OnnxInputError, match=r"axis 0 must be 3"):
        served(torch.ones(4, 8))


class DictModel(torch.nn.Module):
    """A dict of inputs in, a nested dict out."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(8, 4)
        self.b = torch.nn.Linear(6, 4)

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, object]:
        a, b = self.a(x["x"]), self.b(x["z"])
        return {"sum": a + b, "parts": [a, b]}


def test_dict_inputs_and_nested_outputs(tmp_path):
    adapter = torch_adapter(DictModel(), None)
    example = {"x": torch.randn(2, 8), "z": torch.randn(2, 6)}
    # (the exporter's "axis name will not be used" warning is filtered inside; warnings are
    # errors here, so this also checks that nothing else warns)
    exported = export_adapter(adapter, tmp_path / "d.onnx", example)
    assert exported.input_names == ("x", "z")
    assert exported.output_names == ("sum", "parts.0", "parts.1")
    served = build_onnx(exported.spec)
    x = {"x": torch.randn(5, 8), "z": torch.randn(5, 6)}
    got = unflatten(exported.structure, served(x))
    with torch.no_grad():
        want = adapter(x)
    assert list(got) == ["sum", "parts"] and isinstance(got["parts"], list)
    for g, w in zip(flatten(got)[1], flatten(want)[1], strict=True):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=0)


class DataDependent(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.sum() > 0 else x


EXPORT_ERRORS = {
    "onnx_spec": (lambda d: (specs.OnnxSpec(path="m.onnx"), d / "x.onnx"), TypeError, "already"),
    "not_torch": (
        lambda d: (adapters.Adapter(lambda p, x: x, {}, None, framework="jax"), d / "x.onnx"),
        TypeError,
        "only torch-family",
    ),
    "not_a_spec": (lambda d: (42, d / "x.onnx"), TypeError, "expected a spec record"),
    "suffix": (
        lambda d: (torch_adapter(torch.nn.Linear(8, 4), None), d / "x.pt"),
        ValueError,
        "must end in .onnx",
    ),
    "missing_dir": (
        lambda d: (torch_adapter(torch.nn.Linear(8, 4), None), d / "no" / "x.onnx"),
        FileNotFoundError,
        "does not exist",
    ),
    "untraceable": (
        lambda d: (torch_adapter(DataDependent(), None), d / "x.onnx"),
        BuildError,
        "could not trace the adapter .GuardOnDataDependentSymNode",
    ),
}


@pytest.mark.parametrize("case", list(EXPORT_ERRORS))
def test_export_errors_leave_nothing_behind(tmp_path, case):
    make, error, match = EXPORT_ERRORS[case]
    what, path = make(tmp_path)
    with pytest.raises(error, match=match):
        export_onnx(what, path, torch.randn(2, 8))
    assert list(tmp_path.iterdir()) == []


def test_non_array_example_and_output_are_refused(tmp_path):
    lin = torch_adapter(torch.nn.Linear(8, 4), None)
    with pytest.raises(TypeError, match=r"example_input\['x'\]: expected a torch.Tensor"):
        export_onnx(lin, tmp_path / "a.onnx", {"x": [1.0] * 8})
    odd = adapters.Adapter(lambda p, x: {"y": x, "n": 3}, {}, None, framework="torch")
    with pytest.raises(TypeError, match="n: expected arrays"):
        export_onnx(odd, tmp_path / "b.onnx", torch.randn(2, 8))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# parity
# ---------------------------------------------------------------------------------------------


def _linear_pair(shift: float) -> tuple[adapters.Adapter, adapters.Adapter]:
    torch.manual_seed(0)
    a = torch.nn.Linear(8, 4)
    b = torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.bias += shift
    return torch_adapter(a, None), torch_adapter(b, None)


@pytest.mark.parametrize("shift", [0.0, 0.5, -2.0])
def test_parity_measures_a_known_difference(shift):
    a, b = _linear_pair(shift)
    inputs = [torch.randn(3, 8), torch.randn(7, 8)]
    report = parity(a, b, inputs)
    scale = max(float(b(x).abs().max()) for x in inputs)
    assert report.max_abs == pytest.approx(abs(shift), abs=1e-6)
    assert report.max_rel == pytest.approx(abs(shift) / scale, rel=1e-5)
    assert report.ok(atol=abs(shift) + 1e-6, rtol=0)
    assert report.ok() == (shift == 0.0)


def test_parity_on_jax_and_numpy_inputs_and_mismatches():
    a, b = _linear_pair(0.0)
    x = np.ones((2, 8), np.float32)
    two = adapters.Adapter(lambda p, x: (x, x), {}, None)
    wide = adapters.Adapter(lambda p, x: torch.zeros(2, 5), {}, None)
    assert parity(a, b, torch.from_numpy(x)).max_abs == 0.0
    jax_id = adapters.Adapter(lambda p, x: jnp.asarray(x), {}, None, framework="jax")
    np_id = adapters.Adapter(lambda p, x: np.asarray(x), {}, None, framework="numpy")
    assert parity(jax_id, np_id, x).ok(0, 0)
    with pytest.raises(ValueError, match="different numbers of outputs"):
        parity(two, a, torch.from_numpy(x))
    with pytest.raises(ValueError, match=r"shape \[2, 5\] from a but \[2, 4\] from b"):
        parity(wide, a, torch.from_numpy(x))
    with pytest.raises(ValueError, match="empty list"):
        parity(a, b, [])


# nested outputs: arrays in dicts, lists and tuples, any depth
_leaf = st.integers(1, 4).map(lambda n: np.arange(n, dtype=np.float32))
_trees = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from("abcd"), children, min_size=1, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=50, deadline=None)
@given(tree=_trees)
def test_flatten_unflatten_roundtrip(tree):
    names, leaves, structure = flatten(tree)
    assert len(names) == len(set(names)) == len(leaves)
    back = unflatten(structure, leaves)
    assert flatten(back)[2] == structure
    assert all(x is y for x, y in zip(flatten(back)[1], leaves, strict=True))
    assert type(back) is type(tree)

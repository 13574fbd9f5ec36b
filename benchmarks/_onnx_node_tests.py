"""Running one ONNX backend node test through the ONNX -> JAX lowering: the shared core of the
conformance table (``benchmarks/onnx_conformance.py``) and its test
(``tests/interop/test_onnx_conformance.py``).

Graph inputs that decide a shape (``Reduce*``'s ``axes``, ``Reshape``'s ``shape``, ...: the
node tests feed them as data, exporters write them as constants) are bound as constants from
the case's first data set (``lower_onnx(..., constants=)``); a case whose later data sets give
them other values is compared on those values too, lowered again.

A case's outcome is one of: ``passed`` (every output within the case's own ``rtol`` / ``atol``
of the reference, after 64-bit types are narrowed as JAX holds them), ``refused`` (the lowering
raised `OnnxLoweringError` at build: an op or a use outside the table), ``excluded`` (in the
reviewed list, ``benchmarks/onnx_conformance_exclusions.py``), ``mismatch`` (outputs differ) or
``crash`` (any other exception); or ``dtype``: the case's graph computes in an element type
outside the table (strings, 8-, 4- and 2-bit types), outside the conformance goal as the issue
scopes it ("within the supported opset and dtypes"), and refused by the same error. The goal is no ``mismatch`` and no ``crash``.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from benchmarks.onnx_conformance_exclusions import EXCLUDED

#: outcomes, in the order the table lists them
OUTCOMES = ("passed", "refused", "excluded", "mismatch", "crash", "dtype")


@functools.cache
def node_tests() -> tuple[Any, ...]:
    """The backend's node tests, generated in memory (offline); their generators' NumPy
    warnings (overflowing casts written on purpose) are not ours."""
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(load_model_tests(kind="node"))


def op_types(case: Any) -> tuple[str, ...]:
    """The op types a case's graph uses (the first is the op under test)."""
    seen: list[str] = []
    for n in case.model.graph.node:
        name = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        if name not in seen:
            seen.append(name)
    return tuple(seen)


@functools.cache
def ops_under_test() -> dict[str, str]:
    """Test name -> the op it tests: a one-node graph's op; an ``_expanded`` test (the op's
    function body) is its twin's."""
    single = {
        c.name: c.model.graph.node[0].op_type for c in node_tests() if len(c.model.graph.node) == 1
    }
    found = {}
    for c in node_tests():
        twin = c.name.removesuffix("_expanded")
        found[c.name] = single.get(c.name) or single.get(twin) or op_types(c)[0]
    return found


def _close(got: Any, want: np.ndarray, rtol: float, atol: float) -> str | None:
    got = np.asarray(got)
    if want.dtype == object or want.dtype.kind in "US":
        return f"a {want.dtype} output (strings are outside JAX)"
    if got.shape != want.shape:
        return f"shape {list(got.shape)} != {list(want.shape)}"
    if want.dtype == bool or got.dtype == bool:
        return None if np.array_equal(got.astype(bool), want.astype(bool)) else "values differ"
    w = want.astype(np.float64)
    g = got.astype(np.float64)
    if want.dtype.kind == "f" and want.dtype.itemsize == 8:
        rtol, atol = max(rtol, 1e-5), max(atol, 1e-6)  # computed in float32 (no x64)
    if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        worst = float(np.nanmax(np.abs(g - w))) if w.size else 0.0
        return f"max abs diff {worst:.3g} (rtol {rtol}, atol {atol})"
    return None


def opset(case: Any) -> int:
    """The default-domain opset a case declares."""
    return max(
        (o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), default=0
    )


def _array(v: Any) -> Any:
    """A data set's value as NumPy (some cases store ``TensorProto``s)."""
    from onnx import TensorProto, numpy_helper

    return numpy_helper.to_array(v) if isinstance(v, TensorProto) else v


def run_case(case: Any, *, jit: bool = False) -> tuple[str, str]:
    """``(outcome, detail)`` of one node test (see the module); a case declaring an opset older
    than the table's (13) is the caller's to leave out (`opset`)."""
    if case.name in EXCLUDED:
        return "excluded", EXCLUDED[case.name]
    for inputs, outputs in case.data_sets:
        inputs, outputs = [_array(v) for v in inputs], [_array(v) for v in outputs]
        outcome = _run_data_set(case, inputs, outputs, jit)
        if outcome is not None:
            return outcome
    return "passed", ""


def _run_data_set(case: Any, inputs: list, outputs: list, jit: bool) -> tuple[str, str] | None:
    """The outcome of one data set when it is not a pass; None when it passes."""
    import jax

    from interop.onnx_lowering import OnnxLoweringError, lower_onnx, shape_inputs

    names = [v.name for v in case.model.graph.input][: len(inputs)]
    bind = set(shape_inputs(case.model))
    constants = {n: v for n, v in zip(names, inputs, strict=True) if n in bind}
    feeds = tuple(v for n, v in zip(names, inputs, strict=True) if n not in bind)
    try:
        forward, params, _ = lower_onnx(case.model, constants=constants)
        call = jax.jit(forward) if jit else forward
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # JAX's notes on narrowing 64-bit inputs
            got = call(params, feeds)
    except OnnxLoweringError as err:
        lines = str(err).splitlines()
        detail = " ".join(x.strip() for x in lines[1:-1]) or lines[0]
        return ("dtype" if "element type" in detail else "refused"), detail
    except Exception as err:
        return "crash", f"{type(err).__name__}: {str(err)[:200]}"
    got = got if isinstance(got, tuple) else (got,)
    if len(got) != len(outputs):
        return "mismatch", f"{len(got)} outputs, expected {len(outputs)}"
    for i, (g, w) in enumerate(zip(got, outputs, strict=True)):
        why = _close(g, np.asarray(w), case.rtol, case.atol)
        if why is not None:
            return "mismatch", f"output {i}: {why}"
    return None

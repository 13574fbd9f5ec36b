"""The ONNX source's session, model signature and input checks, and the source's contract:
an ONNX Runtime session fed the caller's memory through IO binding.

eva's ``ONNXModel`` copies every input to the host through NumPy and feeds only the first
input. Here ``forward(params, x)``:

* hands each input to ONNX Runtime as an ``OrtValue`` over the caller's own buffer
  (``interop.to_ortvalue``, DLPack; no copy for C-contiguous memory on a device the session
  can read). A strided input is made C-contiguous first: ONNX Runtime reads raw pointers as
  dense row-major memory, so binding a transposed view would give silently wrong numbers;
* lets ONNX Runtime allocate the outputs (or write into buffers passed as ``out=``) and
  returns them in the input's framework (torch in -> torch out, JAX -> JAX, NumPy -> NumPy),
  sharing ONNX Runtime's buffers (DLPack again, no copy);
* checks names, dtypes, ranks and fixed dimensions first, so a bad input is an error that
  prints the model's signature, never a wrong result or a bare ONNX Runtime traceback.

One session serves every thread: ONNX Runtime's ``Run`` is safe to call concurrently, and
each call makes its own ``IOBinding`` (CUDA, ``out=``) or its own OrtValues (CPU, where one
``run_with_ort_values`` call does the same binding with less per-call overhead).
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

import specs
from interop.internal import ORT_TO_NAME, TORCH_TO_NAME

from ...errors import BuildError

#: ONNX Runtime type strings -> dtype names (torch / NumPy spelling): interop's table
ORT_DTYPES: Mapping[str, str] = ORT_TO_NAME

GRAPH_OPTIMIZATION_LEVELS: dict[str, ort.GraphOptimizationLevel] = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

CPU_PROVIDER = "CPUExecutionProvider"
#: providers whose outputs live in CUDA memory
CUDA_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
OUTPUT_STYLES = ("tuple", "dict")

#: ONNX Runtime's own exception types (plain ``Exception`` subclasses), translated for users
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(_ort_state, name)
    for name in (
        "Fail",
        "InvalidArgument",
        "InvalidProtobuf",
        "NoSuchFile",
        "NoModel",
        "RuntimeException",
        "InvalidGraph",
        "NotImplemented",
        "EPFail",
    )
    if hasattr(_ort_state, name)
)


class OnnxIO(NamedTuple):
    """One input or output of an ONNX model.

    Attributes:
        name: the graph's name for it.
        dtype: ``"float32"``, ``"int64"``, ... (``ORT_DTYPES``), or ONNX's own type string.
        shape: one entry per axis: an ``int`` for a fixed size, a string for a named dynamic
            axis (``"batch"``), ``None`` for an unnamed one.
    """

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


class OnnxInputError(ValueError):
    """An input that does not fit the model's signature (the message prints the signature)."""


def signature(session: ort.InferenceSession) -> tuple[tuple[OnnxIO, ...], tuple[OnnxIO, ...]]:
    """The model's ``(inputs, outputs)`` as `OnnxIO` records, in graph order."""

    def one(arg: Any) -> OnnxIO:
        shape = tuple(d if isinstance(d, int) or d is None else str(d) for d in arg.shape)
        return OnnxIO(arg.name, ORT_DTYPES.get(arg.type, arg.type), shape)

    return tuple(one(a) for a in session.get_inputs()), tuple(one(a) for a in session.get_outputs())


def format_signature(inputs: Sequence[OnnxIO], outputs: Sequence[OnnxIO] = ()) -> str:
    """``"inputs: x: float32[batch, 3, 224, 224]; outputs: y: float32[batch, 1000]"``."""
    text = "inputs: " + ", ".join(str(i) for i in inputs)
    if outputs:
        text += "; outputs: " + ", ".join(str(o) for o in outputs)
    return text


@functools.lru_cache(maxsize=64)
def _input_signature(inputs: tuple[OnnxIO, ...]) -> str:
    return format_signature(inputs)  # cached: it is built on every call, printed only on error


# ---------------------------------------------------------------------------------------------
# session
# ---------------------------------------------------------------------------------------------


def resolve_providers(spec: specs.OnnxSpec) -> list[str]:
    """The execution providers to create the session with, most preferred first.

    ``spec.providers`` is used as given (minus providers this ONNX Runtime build lacks);
    without it, ``device`` decides. ``device: cuda`` needs a CUDA provider: falling back to
    the CPU happens only when the spec lists ``CPUExecutionProvider`` itself.

    Raises:
        BuildError: an unknown provider name, or ``device: cuda`` with no usable CUDA
            provider and no CPU provider listed.
    """
    available = ort.get_available_providers()
    if spec.providers is None:
        wanted = [CUDA_PROVIDERS[0]] if spec.device == "cuda" else [CPU_PROVIDER]
    else:
        wanted = list(spec.providers)
        known = ort.get_all_providers()
        for name in wanted:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=2)
                hint = (
                    f"Did you mean {' or '.join(map(repr, close))}? Fix the spelling."
                    if close
                    else None
                )
                raise BuildError(
                    "providers",
                    f"{name!r} is not an ONNX Runtime execution provider",
                    expected=f"names from {sorted(known)}",
                    got=list(spec.providers),
                    fix=hint,
                )
    usable = [p for p in wanted if p in available]
    if spec.device == "cuda" and not any(p in CUDA_PROVIDERS for p in usable):
        if CPU_PROVIDER not in usable:
            raise BuildError(
                "device",
                "the spec asks for device 'cuda' but this ONNX Runtime has no usable CUDA "
                f"provider (asked for {wanted}, available: {available})",
                fix="Install onnxruntime-gpu on a machine with a GPU, set device: cpu, or add "
                "CPUExecutionProvider to providers to allow running on the CPU instead",
            )
    if not usable:
        raise BuildError(
            "providers",
            f"none of the requested providers {wanted} is available in this ONNX Runtime",
            expected=f"one of {available}",
            got=list(spec.providers or ()),
        )
    return usable


def session_options(
    spec: specs.OnnxSpec, config: Mapping[str, str] | None = None
) -> ort.SessionOptions:
    """``SessionOptions`` with the spec's thread count and graph optimisation level.

    ``config`` adds ONNX Runtime session config entries (``add_session_config_entry``), e.g.
    ``{"session.intra_op.allow_spinning": "0"}``.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_OPTIMIZATION_LEVELS[spec.graph_optimization_level]
    if spec.intra_op_num_threads is not None:
        options.intra_op_num_threads = spec.intra_op_num_threads
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return options


def create_session(
    spec: specs.OnnxSpec, config: Mapping[str, str] | None = None
) -> ort.InferenceSession:
    """An ``InferenceSession`` for ``spec.path`` (``config``: see `session_options`).

    Raises:
        BuildError: the file is missing, is not a file, or is not a valid ONNX model (the
            message names the path and says what ONNX Runtime found wrong).
    """
    path = os.path.expanduser(spec.path)
    if not os.path.exists(path):
        raise BuildError(
            "path",
            f"no ONNX file at {path!r}",
            fix="Check the path (relative paths are resolved from the working directory "
            f"{os.getcwd()!r}), or export one with adapters.export_onnx",
        )
    if not os.path.isfile(path):
        raise BuildError("path", f"{path!r} is a directory, not an .onnx file")
    providers = resolve_providers(spec)
    try:
        options = session_options(spec, config)
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except ORT_ERRORS as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BuildError(
            "path",
            f"ONNX Runtime cannot load {path!r} as an ONNX model ({first})",
            fix="Check that the file is a complete .onnx model (re-export it if a write was "
            "interrupted)",
        ) from err


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def _framework(a: Any) -> str | None:
    if isinstance(a, torch.Tensor):
        return "torch"
    if isinstance(a, np.ndarray):
        return "numpy"
    module = type(a).__module__.split(".")[0]
    if module in ("jax", "jaxlib") and hasattr(a, "unsafe_buffer_pointer"):
        return "jax"
    return None


def _dtype_name(a: Any, framework: str) -> str:
    if framework == "torch":
        return TORCH_TO_NAME.get(a.dtype) or str(a.dtype).removeprefix("torch.")
    return np.dtype(a.dtype).name


def by_name(x: Any, inputs: Sequence[OnnxIO], where: str) -> dict[str, Any]:
    """The caller's input(s) as ``{input name: array}`` in graph order."""
    names = [i.name for i in inputs]
    sig = _input_signature(tuple(inputs))
    if isinstance(x, Mapping):
        missing = [n for n in names if n not in x]
        unexpected = [k for k in x if k not in names]
        if missing or unexpected:
            raise OnnxInputError(
                f"{where}: the input dict's keys {list(x)} do not match the model's inputs "
                f"(missing {missing}, unexpected {unexpected}). Model {sig}. Fix: pass one "
                "array per input name."
            )
        return {n: x[n] for n in names}
    if isinstance(x, (tuple, list)):
        if len(x) != len(names):
            raise OnnxInputError(
                f"{where}: got {len(x)} positional inputs but the model takes {len(names)}. "
                f"Model {sig}. Fix: pass one array per input, in this order, or a dict by name."
            )
        return dict(zip(names, x, strict=True))
    if len(names) != 1:
        raise OnnxInputError(
            f"{where}: got one array but the model takes {len(names)} inputs. Model {sig}. "
            "Fix: pass a dict {input name: array} (or a tuple in this order)."
        )
    return {names[0]: x}


def check_inputs(feeds: Mapping[str, Any], inputs: Sequence[OnnxIO], where: str = "forward") -> str:
    """Check every array against the model's signature; return the inputs' framework.

    Raises:
        TypeError: an input is not a torch / JAX / NumPy array, or has the wrong dtype.
        OnnxInputError: wrong rank or a fixed dimension that differs, or inputs that mix
            frameworks. Every message prints the model's input signature.
    """
    sig = _input_signature(tuple(inputs))
    frameworks = set()
    for io in inputs:
        a = feeds[io.name]
        fw = _framework(a)
        if fw is None:
            raise TypeError(
                f"{where}: input {io.name!r}: expected a torch.Tensor, jax.Array or "
                f"numpy.ndarray, got {type(a).__module__}.{type(a).__qualname__}. Model {sig}."
            )
        frameworks.add(fw)
        dtype = _dtype_name(a, fw)
        if dtype != io.dtype:
            raise TypeError(
                f"{where}: input {io.name!r}: expected dtype {io.dtype}, got {dtype}. "
                f"Model {sig}. Fix: cast it first (e.g. x.to(torch.{io.dtype}) or "
                f"x.astype('{io.dtype}'))."
            )
        shape = tuple(a.shape)
        if len(shape) != len(io.shape):
            raise OnnxInputError(
                f"{where}: input {io.name!r}: expected rank {len(io.shape)} "
                f"({io}), got shape {list(shape)} (rank {len(shape)}). Model {sig}."
            )
        for axis, (want, got) in enumerate(zip(io.shape, shape, strict=True)):
            if isinstance(want, int) and want != got:
                raise OnnxInputError(
                    f"{where}: input {io.name!r}: axis {axis} must be {want} ({io}), got shape "
                    f"{list(shape)}. Model {sig}. Fix: resize the input; only the named "
                    "(dynamic) axes may vary."
                )
    named: dict[str, tuple[str, int]] = {}
    for io in inputs:
        for axis, want in enumerate(io.shape):
            if not isinstance(want, str):
                continue
            size = feeds[io.name].shape[axis]
            first = named.setdefault(want, (io.name, size))
            if first[1] != size:
                raise OnnxInputError(
                    f"{where}: axis {want!r} is {first[1]} in input {first[0]!r} but {size} in "
                    f"input {io.name!r}; inputs sharing a named axis must agree. Model {sig}."
                )
    if len(frameworks) > 1:
        raise OnnxInputError(
            f"{where}: inputs mix frameworks {sorted(frameworks)}; the outputs are returned in "
            "the inputs' framework, so it must be one. Fix: convert them with interop.to_*."
        )
    return frameworks.pop()

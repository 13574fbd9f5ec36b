"""Running an ONNX Runtime session on the caller's memory: `build_onnx` and its IO binding.

See ``session.py`` beside it for the contract (zero-copy inputs and outputs, checks before the
run, one session for every thread); this module is the serving half of that source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import onnxruntime as ort
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state
from torch.utils.dlpack import from_dlpack as _torch_from_capsule
from torch.utils.dlpack import to_dlpack as _torch_capsule

import interop
import specs

from ...adapter import Adapter
from .metadata import stored_metadata
from .session import (
    CUDA_PROVIDERS,
    ORT_ERRORS,
    OUTPUT_STYLES,
    OnnxInputError,
    OnnxIO,
    by_name,
    check_inputs,
    create_session,
    format_signature,
    signature,
)


def _device_of(session: ort.InferenceSession) -> tuple[str, int]:
    first = session.get_providers()[0]
    if first in CUDA_PROVIDERS:
        options = session.get_provider_options().get(first, {})
        return "cuda", int(options.get("device_id", 0))
    return "cpu", 0


# ONNX Runtime's C-level OrtValue from a DLPack capsule: what the public
# ``OrtValue.from_dlpack`` calls after a ``hasattr`` and before wrapping it in a Python
# OrtValue that ``run_with_ort_values`` would unwrap again
_ORT_FROM_CAPSULE: Any = getattr(
    getattr(_ort_state, "OrtValue", None),
    "from_dlpack",
    lambda capsule: ort.OrtValue.from_dlpack(capsule)._ortvalue,
)

#: how many input signatures (types, dtypes, shapes) a forward remembers as already checked
_CHECKED_MAX = 256
_CONVERT = {"torch": interop.to_torch, "jax": interop.to_jax, "numpy": interop.to_numpy}


def bind(
    session: ort.InferenceSession,
    feeds: Mapping[str, Any],
    output_names: Sequence[str],
    *,
    out: Sequence[Any] | None = None,
    device: tuple[str, int] = ("cpu", 0),
) -> tuple[ort.IOBinding, dict[str, ort.OrtValue]]:
    """A fresh ``IOBinding`` over the caller's memory, and the bound input ``OrtValue``s.

    Args:
        session: the session (shared between threads; each call gets its own binding).
        feeds: ``{input name: array}``; C-contiguous arrays are bound in place (the
            OrtValue's ``data_ptr()`` is the array's), strided ones through a contiguous copy.
        output_names: the outputs to compute, in order.
        out: optional preallocated C-contiguous arrays, one per output, that ONNX Runtime
            writes into (never copied: ``BufferError`` if one cannot be shared).
        device: where ONNX Runtime allocates outputs, ``("cpu", 0)`` or ``("cuda", i)``.

    Returns:
        The binding and the input OrtValues; keep both alive until the run is over.
    """
    binding = session.io_binding()
    # C-contiguous memory is shared; strided inputs get a dense copy
    values = {name: interop.to_ortvalue(a) for name, a in feeds.items()}
    for name, value in values.items():
        binding.bind_ortvalue_input(name, value)
    if out is None:
        for name in output_names:
            binding.bind_output(name, device[0], device[1])
    else:
        for name, array in zip(output_names, out, strict=True):
            binding.bind_ortvalue_output(name, interop.to_ortvalue(array, copy=False))
    return binding, values


def collect(binding: ort.IOBinding, framework: str) -> tuple[list[ort.OrtValue], list[Any]]:
    """The outputs ONNX Runtime wrote, as OrtValues and as ``framework`` arrays sharing them."""
    values = binding.get_outputs()
    convert = _CONVERT[framework]
    return list(values), [convert(v) for v in values]


def run_bound(
    session: ort.InferenceSession,
    feeds: Mapping[str, Any],
    output_names: Sequence[str],
    framework: str,
    *,
    out: Sequence[Any] | None = None,
    device: tuple[str, int] = ("cpu", 0),
) -> list[Any]:
    """`bind`, run, `collect`: one array per output, in ``framework`` (or ``out`` itself).

    ``framework`` is ``"torch"``, ``"jax"`` or ``"numpy"``; the returned arrays share ONNX
    Runtime's output buffers.
    """
    if out is None and device == ("cpu", 0):
        run = _cpu_runner(session)
        if run is not None:
            return _run_cpu(run, feeds, output_names, _CONVERT[framework])
    binding, _inputs = bind(session, feeds, output_names, out=out, device=device)
    session.run_with_iobinding(binding)
    if out is not None:
        return list(out)
    return collect(binding, framework)[1]


def _cpu_runner(session: ort.InferenceSession) -> Any:
    """The session's C-level ``run_with_ort_values``, or ``None`` (then: IO binding)."""
    return getattr(getattr(session, "_sess", None), "run_with_ort_values", None)


def _run_cpu(
    run: Any, feeds: Mapping[str, Any], output_names: list[str], convert: Any
) -> list[Any]:
    """The CPU case of `run_bound` in one ONNX Runtime call (instead of an IO binding).

    The same zero-copy inputs (OrtValues over the caller's memory) and ORT-allocated outputs
    as an ``IOBinding``, without building one per call: ``run_with_ort_values`` of the
    session's C object, since the public wrapper re-validates its arguments in Python.
    ``InferenceSession._sess`` is private, so `run_bound` falls back to IO binding when it is
    missing.
    """
    values = {name: interop.to_ortvalue(a)._ortvalue for name, a in feeds.items()}
    result = run(values, output_names, None)
    # indexed, not iterated: iterating the pybind11 OrtValueVector is slow
    return [convert(result[i]) for i in range(len(result))]


def _run_torch_cpu(
    run: Any, name: str, x: torch.Tensor, output_names: list[str]
) -> tuple[Any, Any, list[torch.Tensor]]:
    """`_run_cpu` for one C-contiguous CPU torch tensor, with nothing dispatched on types.

    Returns:
        The bound input OrtValue (over ``x``'s memory), ONNX Runtime's outputs and the torch
        tensors sharing them (the caller keeps only the tensors; the first two are for tests).
    """
    value = _ORT_FROM_CAPSULE(_torch_capsule(x))
    result = run({name: value}, output_names, None)
    return value, result, [_torch_from_capsule(result[i].__dlpack__()) for i in range(len(result))]


def build_onnx(
    spec: specs.OnnxSpec, *, outputs: str = "tuple", config: Mapping[str, str] | None = None
) -> Adapter:
    """An `Adapter` running ``spec.path`` with ONNX Runtime; ``params`` is empty.

    ``forward(params, x, *, out=None)``: ``x`` is one array (a single-input model), a dict
    ``{input name: array}`` or a tuple in the model's input order; the outputs come back in
    ``x``'s framework: one array for a single-output model, else a tuple in graph order (or a
    dict by name with ``outputs="dict"``), then the spec's transforms. ``out`` (a tuple or
    dict of preallocated arrays like the outputs) makes ONNX Runtime write into them.

    Args:
        spec: the ONNX file, device, providers and session options.
        outputs: ``"tuple"`` or ``"dict"``: how several outputs are returned.
        config: ONNX Runtime session config entries (see `session_options`).

    Returns:
        ``Adapter(framework="onnx", module=session)``; ``info`` holds ``inputs`` and
        ``outputs`` (`OnnxIO` tuples), ``providers`` and ``device``.

    Raises:
        BuildError: missing / invalid file, unknown provider, CUDA unavailable (see
            `create_session` and `resolve_providers`).

    Example:
        >>> backbone = build_onnx(specs.OnnxSpec(path="vit.onnx"))
        >>> y = backbone(torch.randn(8, 3, 224, 224))     # (8, dim) torch tensor, no copies
    """
    if not isinstance(spec, specs.OnnxSpec):
        raise TypeError(f"build_onnx: expected a specs.OnnxSpec, got {type(spec).__name__}.")
    if outputs not in OUTPUT_STYLES:
        raise ValueError(f"build_onnx: outputs must be one of {OUTPUT_STYLES}, got {outputs!r}.")
    session = create_session(spec, config)
    inputs_sig, outputs_sig = signature(session)
    output_names = [o.name for o in outputs_sig]
    device = _device_of(session)
    post = None
    if spec.transforms:
        from ...transforms.of_spec import from_specs

        post = from_specs(spec.transforms)

    single_input = inputs_sig[0].name if len(inputs_sig) == 1 else None
    cpu_run = _cpu_runner(session) if device == ("cpu", 0) else None
    fast = _torch_fast_path(cpu_run, single_input, inputs_sig, outputs_sig, output_names)
    run = _general_path(session, inputs_sig, outputs_sig, cpu_run, device)
    n_outputs = len(output_names)

    def pack(ys: list[Any]) -> Any:
        """One array per output -> what forward returns (then the spec's transforms)."""
        if n_outputs == 1:
            y = ys[0]
        elif outputs == "dict":
            y = dict(zip(output_names, ys, strict=True))
        else:
            y = tuple(ys)
        return y if post is None else post(y)

    def forward(params: Mapping[str, Any], x: Any, *, out: Any = None) -> Any:
        if params:
            raise ValueError(
                f"forward: ONNX adapters have no params; expected an empty mapping, got keys "
                f"{list(params)[:5]}. Fix: call forward(adapter.params, x) or adapter(x)."
            )
        if fast is not None and type(x) is torch.Tensor and out is None:
            ys = fast(x)
            if ys is not None:
                return pack(ys)
        return pack(run(x, out))

    return Adapter(
        forward=forward,
        params={},
        spec=spec,
        framework="onnx",
        module=session,
        info={
            "inputs": inputs_sig,
            "outputs": outputs_sig,
            "providers": tuple(session.get_providers()),
            "device": device[0],
            **stored_metadata(session, spec.path),
        },
    )


def _general_path(
    session: ort.InferenceSession,
    inputs_sig: Sequence[OnnxIO],
    outputs_sig: Sequence[OnnxIO],
    cpu_run: Any,
    device: tuple[str, int],
) -> Any:
    """``run(x, out) -> outputs``: any input form and framework, optional ``out=`` buffers."""
    checked: dict[tuple, str] = {}
    single_input = inputs_sig[0].name if len(inputs_sig) == 1 else None
    output_names = [o.name for o in outputs_sig]

    def run(x: Any, out: Any) -> list[Any]:
        if single_input and not isinstance(x, (Mapping, tuple, list)):
            feeds = {single_input: x}
        else:
            feeds = by_name(x, inputs_sig, "forward")
        # the check depends only on each input's type, dtype and shape: done once per kind
        key = tuple((type(a), getattr(a, "dtype", None), _shape(a)) for a in feeds.values())
        framework = checked.get(key)
        if framework is None:
            framework = check_inputs(feeds, inputs_sig)
            if len(checked) >= _CHECKED_MAX:
                checked.clear()
            checked[key] = framework
        out_list = None if out is None else list(_by_name_out(out, output_names))
        try:
            if cpu_run is not None and out_list is None:
                return _run_cpu(cpu_run, feeds, output_names, _CONVERT[framework])
            return run_bound(session, feeds, output_names, framework, out=out_list, device=device)
        except (*ORT_ERRORS, RuntimeError) as err:  # the Python API rewraps some as RuntimeError
            raise _run_error(err, feeds, inputs_sig, outputs_sig) from err

    return run


def _torch_fast_path(
    cpu_run: Any,
    single_input: str | None,
    inputs_sig: Sequence[OnnxIO],
    outputs_sig: Sequence[OnnxIO],
    output_names: list[str],
) -> Any:
    """``fast(x) -> outputs | None`` for one CPU torch tensor (None: take the general path).

    The common case (one CPU torch tensor in, ORT-allocated outputs out) without the general
    path's dict / generator / converter dispatch. The same checks (cached per dtype and shape),
    the same zero-copy binding. None when the session has no such case (several inputs, CUDA).
    """
    if single_input is None or cpu_run is None:
        return None
    # (dtype, shape) of single torch inputs already checked -> whether the shape is non-empty
    torch_checked: dict[tuple[torch.dtype, torch.Size], bool] = {}

    def fast(x: torch.Tensor) -> list[torch.Tensor] | None:
        key = (x.dtype, x.shape)
        nonempty = torch_checked.get(key)
        if nonempty is None:
            check_inputs({single_input: x}, inputs_sig)
            if len(torch_checked) >= _CHECKED_MAX:
                torch_checked.clear()
            nonempty = torch_checked[key] = 0 not in key[1]
        if not (nonempty and x.is_cpu and not x.requires_grad and x.is_contiguous()):
            return None
        try:
            # looked up here, not bound at build time: tests spy on it
            return _run_torch_cpu(cpu_run, single_input, x, output_names)[2]
        except (*ORT_ERRORS, RuntimeError) as err:
            raise _run_error(err, {single_input: x}, inputs_sig, outputs_sig) from err

    return fast


def _run_error(
    err: Exception,
    feeds: Mapping[str, Any],
    inputs_sig: Sequence[OnnxIO],
    outputs_sig: Sequence[OnnxIO],
) -> OnnxInputError:
    """An ONNX Runtime failure during a run, with the inputs' shapes and the signature."""
    return OnnxInputError(
        f"forward: ONNX Runtime failed on inputs "
        f"{ {n: tuple(a.shape) for n, a in feeds.items()} }: {' '.join(str(err).split())}. "
        f"Model {format_signature(inputs_sig, outputs_sig)}."
    )


def _shape(a: Any) -> Any:
    shape = getattr(a, "shape", None)
    return shape if isinstance(shape, tuple) else id(a)  # not an array: never cached twice


def _by_name_out(out: Any, names: Sequence[str]) -> list[Any]:
    if isinstance(out, Mapping):
        if set(out) != set(names):
            raise ValueError(f"forward: out= must have the keys {list(names)}, got {list(out)}.")
        return [out[n] for n in names]
    if isinstance(out, (tuple, list)):
        if len(out) != len(names):
            raise ValueError(f"forward: out= must hold {len(names)} arrays, got {len(out)}.")
        return list(out)
    if len(names) != 1:
        raise ValueError(f"forward: out= must be a tuple or dict of {len(names)} arrays.")
    return [out]

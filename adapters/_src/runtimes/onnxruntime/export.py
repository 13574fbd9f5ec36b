"""Export a torch-family adapter to an ONNX file: `export_onnx` (public) and `export_adapter`
(which also returns how to read the file back).

The export traces ``adapter.forward`` (so the spec's output transforms are in the graph) with
the ``torch.export``-based exporter (``dynamo=True``). The file is written next to its
destination and renamed into place, so an interrupted export leaves nothing half-written.

Inputs get stable names (``inputs.py``); outputs too: one tensor is ``output``, a tuple
``output_0``, ``output_1``, ..., a dict keeps its keys, and nested outputs join their path with
``.`` (``output.0``, ``hidden_states.3``). `Exported.structure` records the output nesting so
the ONNX outputs can be put back into the adapter's own structure (``outputs.unflatten``).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

import specs
from specs.internal import atomic_write

from ...adapter import Adapter
from ...errors import BuildError
from ...sources.onnx.metadata import METADATA_SPEC
from ...sources.table import as_spec, dispatch
from ..inputs import Traceable, as_torch_inputs, batch_of_two, restructure
from ..outputs import Structure, flatten

#: above this many parameter bytes the weights go to a ``<name>.data`` file next to the model
#: (a single protobuf cannot exceed 2 GiB)
EXTERNAL_DATA_BYTES = 1 << 30


@attrs.frozen(eq=False)
class Exported:
    """What an export wrote and how to read it back.

    Attributes:
        spec: an `OnnxSpec` for the written file (the transforms are inside the graph).
        input_names / output_names: the graph's names, in order.
        input_kind: ``"array"``, ``"tuple"`` or ``"dict"``: how the example input was given.
        structure: the adapter output's nesting (see `flatten`).
    """

    spec: specs.OnnxSpec
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_kind: str
    structure: Structure


def _torch_adapter(spec_or_adapter: Any, fn: str) -> Adapter:
    if isinstance(spec_or_adapter, Adapter):
        adapter = spec_or_adapter
    elif isinstance(spec_or_adapter, specs.OnnxSpec):
        raise TypeError(
            f"{fn}: the spec is already ONNX ({spec_or_adapter.path!r}); there is nothing to "
            "export. Pass a torch-family spec or adapter."
        )
    elif isinstance(spec_or_adapter, (*specs.SPEC_TYPES, str)):
        adapter = dispatch(as_spec(spec_or_adapter), None)
    else:
        raise TypeError(
            f"{fn}: expected a spec record, a registry name or an adapters.Adapter, got "
            f"{type(spec_or_adapter).__name__}."
        )
    if adapter.framework != "torch":
        raise TypeError(
            f"{fn}: only torch-family adapters can be exported to ONNX; this one runs on "
            f"{adapter.framework!r} (spec {type(adapter.spec).__name__})."
        )
    return adapter


def _param_bytes(adapter: Adapter) -> int:
    return sum(
        t.numel() * t.element_size() for t in adapter.params.values() if isinstance(t, torch.Tensor)
    )


def _reason(err: BaseException) -> str:
    """The root cause of an exporter error in one line (the wrapper's text is boilerplate)."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first[:300]}"


def _checked_destination(path: str | os.PathLike[str]) -> Path:
    dest = Path(path).expanduser()
    if dest.suffix != ".onnx":
        raise ValueError(f"export_onnx: path must end in .onnx, got {str(dest)!r}.")
    if not dest.parent.is_dir():
        raise FileNotFoundError(
            f"export_onnx: the directory {str(dest.parent)!r} of path {str(dest)!r} does not "
            "exist. Create it first."
        )
    return dest


def export_adapter(
    adapter: Adapter,
    path: str | os.PathLike[str],
    example_input: Any,
    *,
    dynamic_batch: bool = True,
    opset_version: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Exported:
    """`export_onnx` for an adapter, returning everything needed to read the file back."""
    # the path is checked before the adapter runs on the example (a whole forward pass)
    dest = _checked_destination(path)
    kind, names, tensors = as_torch_inputs(example_input)
    if dynamic_batch:
        tensors = batch_of_two(names, tensors)
    with torch.no_grad():
        reference = adapter.forward(adapter.params, restructure(kind, names, tensors))
    output_names, _, structure = flatten(reference)
    module = Traceable(adapter, kind, names).eval()
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch")
        dynamic_shapes = (tuple({0: batch} for _ in tensors),)
    external = _param_bytes(adapter) > EXTERNAL_DATA_BYTES
    with atomic_write(dest) as staged, warnings.catch_warnings():
        # When several inputs share the batch axis, the exporter names it after the
        # first one and warns that the others' (identical) axis name is unused.
        warnings.filterwarnings(
            "ignore",
            message=r".*will not be used, since it shares the same shape constraints",
            category=UserWarning,
        )
        try:
            program = torch.onnx.export(
                module,
                tuple(tensors),
                input_names=names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                opset_version=opset_version,
                dynamo=True,
                verbose=False,
            )
        except Exception as err:  # torch.export raises many unrelated types
            hint = (
                " If the model fixes its batch size, pass dynamic_batch=False."
                if dynamic_batch
                else ""
            )
            raise BuildError(
                "export",
                f"torch.onnx.export could not trace the adapter ({_reason(err)})",
                fix=f"Check that forward runs on the example input.{hint}",
            ) from err
        program.model.metadata_props.update(_metadata(adapter, metadata))
        program.save(str(staged), external_data=external)
    return Exported(
        spec=specs.OnnxSpec(path=str(dest)),
        input_names=tuple(names),
        output_names=tuple(output_names),
        input_kind=kind,
        structure=structure,
    )


def _metadata(adapter: Adapter, given: Mapping[str, str] | None) -> dict[str, str]:
    """The model's ``metadata_props``: the spec's YAML (when it is plain data) and ``given``."""
    found: dict[str, str] = {}
    if isinstance(adapter.spec, specs.SPEC_TYPES):
        try:
            found[METADATA_SPEC] = specs.dumps(adapter.spec, redact=True)  # stored: no secrets
        except specs.SpecError:
            pass  # e.g. a FunctionSpec with a set in its arguments: nothing to store
    for key, value in (given or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"export_onnx: metadata must map strings to strings, got {key!r}: "
                f"{type(value).__name__}; serialise values (e.g. json.dumps) first."
            )
        found[key] = value
    return found


def export_onnx(
    spec_or_adapter: Any,
    path: str | os.PathLike[str],
    example_input: Any,
    dynamic_batch: bool = True,
    *,
    opset_version: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> specs.OnnxSpec:
    """Export a torch-family backbone (with its output transforms) to an ONNX file.

    Args:
        spec_or_adapter: a torch-family spec record, a registry name, or an `Adapter` with
            ``framework == "torch"``.
        path: destination ``.onnx`` file; its directory must exist. Weights over 1 GiB go to
            ``<path>.data`` beside it.
        example_input: one array ``(batch, ...)``, a tuple of arrays, or a dict
            ``{name: array}`` (torch, JAX or NumPy), as ``forward`` takes it. Its values do
            not matter; shapes and dtypes do.
        dynamic_batch: export axis 0 of every input as a dynamic ``batch`` axis (an example
            with batch 1 is traced at batch 2, since ``torch.export`` fixes size-1 axes).
        opset_version: the ONNX opset; default: the exporter's.
        metadata: extra ``metadata_props`` entries (strings). The spec's YAML is always stored
            under ``fm_adapters.spec``; ``fm_adapters.preprocess`` (JSON of the input's
            size, mean, std, interpolation, crop) is read back by `build_onnx` as
            ``info["preprocess"]``, so the model keeps its preprocessing.

    Returns:
        An `OnnxSpec` for the written file (``adapters.build`` it to run it).

    Raises:
        TypeError: not a torch-family backbone, or a non-array example input or output.
        BuildError: the adapter cannot be traced (the message carries the exporter's reason).

    Example:
        >>> onnx_spec = export_onnx(specs.TimmSpec("vit_small_patch16_224", pretrained=False),
        ...                         "vit_s.onnx", torch.randn(2, 3, 224, 224))
        >>> ort_backbone = adapters.build(onnx_spec)
    """
    adapter = _torch_adapter(spec_or_adapter, "export_onnx")
    return export_adapter(
        adapter,
        path,
        example_input,
        dynamic_batch=dynamic_batch,
        opset_version=opset_version,
        metadata=metadata,
    ).spec

"""What an ONNX file says about its own preprocessing: the ``metadata_props`` an export
stored (the spec's YAML, the preprocessing), else the shape of a fixed image input."""

from __future__ import annotations

import json
from typing import Any

import attrs
import onnxruntime as ort

from ..errors import BuildError
from ..preprocess import Preprocess

#: ``metadata_props`` keys written by `adapters.export_onnx` and read back here
METADATA_SPEC = "fm_adapters.spec"
METADATA_PREPROCESS = "fm_adapters.preprocess"


def stored_metadata(session: ort.InferenceSession, path: str) -> dict[str, Any]:
    """The adapter info an export stored in the model's ``metadata_props``: ``metadata`` (all
    entries), ``source_spec`` (the exported spec's YAML) and ``preprocess`` (a `Preprocess`, so
    that embedding the file preprocesses as its source did; else the input shape's).

    Raises:
        BuildError: the stored preprocessing is not a JSON object of `Preprocess` fields.
    """
    stored = dict(session.get_modelmeta().custom_metadata_map)
    found: dict[str, Any] = {"metadata": stored, "preprocess": shape_preprocess(session)}
    if METADATA_SPEC in stored:
        found["source_spec"] = stored[METADATA_SPEC]
    if METADATA_PREPROCESS in stored:
        found["preprocess"] = _stored_preprocess(stored[METADATA_PREPROCESS], path)
    return found


def _stored_preprocess(text: str, path: str) -> Preprocess:
    try:
        pre = json.loads(text)
    except json.JSONDecodeError as err:
        pre, reason = None, f"not JSON ({err})"
    else:
        reason = f"got {type(pre).__name__}"
    fields = {f.name for f in attrs.fields(Preprocess)}
    if isinstance(pre, dict) and not set(pre) <= fields:
        reason = f"unknown fields {sorted(set(pre) - fields)}"
        pre = None
    if not isinstance(pre, dict):
        raise BuildError(
            "path",
            f"the model {path!r} stores its preprocessing under metadata_props "
            f"{METADATA_PREPROCESS!r} as something other than a JSON object of preprocessing "
            f"fields ({reason})",
            fix="Re-export it with 'python -m adapters export', or remove that entry",
        )
    origin = pre.get("origin")
    pre["origin"] = "ONNX model metadata" + (f" ({origin})" if origin else "")
    return Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()})


def shape_preprocess(session: ort.InferenceSession) -> Preprocess | None:
    """The input size and channels of an image model's fixed (N, C, H, W) input (else None)."""
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    return Preprocess(size=(shape[2], shape[3]), channels=shape[1], origin="ONNX input shape")

"""What an ONNX file says about its own preprocessing: the ``metadata_props`` an export
stored (the spec's YAML, the preprocessing), else the shape of a fixed image input."""

from __future__ import annotations

from typing import Any

import attrs
import onnxruntime as ort

from specs import SpecError
from specs.internal import parse_json

from ...errors import BuildError
from ...preprocess import Preprocess, PreprocessError

#: ``metadata_props`` keys written by `adapters.export_onnx` and read back here
METADATA_SPEC = "fm_adapters.spec"
METADATA_PREPROCESS = "fm_adapters.preprocess"
#: a stored preprocessing is a few hundred characters; far more is not one
MAX_PREPROCESS_CHARS = 10_000


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
        return _read_preprocess(text)
    except (SpecError, PreprocessError, TypeError) as err:
        reason = str(err)
    raise BuildError(
        "path",
        f"the model {path!r} stores its preprocessing under metadata_props "
        f"{METADATA_PREPROCESS!r} as something other than a JSON object of valid "
        f"preprocessing fields ({reason})",
        fix="Re-export it with 'python -m adapters export', or remove that entry",
    )


def _read_preprocess(text: str) -> Preprocess:
    """The stored preprocessing, read as a spec file is (bounded in size and depth, duplicate
    keys refused) and checked field by field by `Preprocess` itself.

    Raises:
        SpecError: not JSON, too long, too deep, or not an object of `Preprocess` fields.
        PreprocessError, TypeError: a field out of range, or ``size`` missing.
    """
    if len(text) > MAX_PREPROCESS_CHARS:
        raise SpecError(
            (METADATA_PREPROCESS,),
            f"at most {MAX_PREPROCESS_CHARS} characters",
            show_got=False,
            hint=f"It has {len(text)}.",
        )
    pre = parse_json(text, METADATA_PREPROCESS)
    fields = {f.name for f in attrs.fields(Preprocess)}
    if not isinstance(pre, dict) or not set(pre) <= fields:
        unknown = sorted(map(str, set(pre) - fields)) if isinstance(pre, dict) else None
        raise SpecError(
            (METADATA_PREPROCESS,),
            "a JSON object of preprocessing fields",
            unknown or pre,
            choices=sorted(fields) if unknown else None,
        )
    origin = pre.get("origin")
    pre["origin"] = "ONNX model metadata" + (f" ({origin})" if isinstance(origin, str) else "")
    return Preprocess(**pre)


def shape_preprocess(session: ort.InferenceSession) -> Preprocess | None:
    """The input size and channels of an image model's fixed (N, C, H, W) input (else None)."""
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    try:
        return Preprocess(size=(shape[2], shape[3]), channels=shape[1], origin="ONNX input shape")
    except PreprocessError:  # e.g. a zero-sized axis: not an image input to preprocess for
        return None

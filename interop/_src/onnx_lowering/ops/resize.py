"""``Resize`` through the torch lowering's interpolation matrices
(``interop/_src/lowering/ops/resample.py``): the coordinate modes ATen's upsampling has
(``half_pixel`` / ``pytorch_half_pixel`` / ``align_corners`` for linear and cubic with
``cubic_coeff_a=-0.75``, antialiased as ATen's ``_aa`` kernels; ``asymmetric`` + ``floor`` for
nearest, what ``F.interpolate`` exports);
nearest in ONNX's other coordinate and rounding modes as one-hot rows here; the others are
refused at build."""

from __future__ import annotations

import math

import numpy as np

from interop._src.lowering.ops.resample import (
    antialias_matrix,
    cubic_matrix,
    linear_matrix,
    nearest_matrix,
    separable,
)
from interop._src.onnx_lowering.errors import OnnxLoweringError
from interop._src.onnx_lowering.registry import onnx_op

_ATEN_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners")
#: ONNX's source coordinate of output pixel ``x`` (``n_in``, ``n_out``, ``scale``) per mode
_NEAREST_COORDS = {
    "half_pixel": lambda x, i, o, s: (x + 0.5) / s - 0.5,
    "pytorch_half_pixel": lambda x, i, o, s: (x + 0.5) / s - 0.5 if o > 1 else 0 * x,
    "align_corners": lambda x, i, o, s: x * (i - 1) / (o - 1) if o > 1 else 0 * x,
    "asymmetric": lambda x, i, o, s: x / s,
    "tf_half_pixel_for_nn": lambda x, i, o, s: (x + 0.5) / s,
}
_ROUNDING = {
    "round_prefer_floor": lambda v: np.ceil(v - 0.5),
    "round_prefer_ceil": lambda v: np.floor(v + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


def _refusal(attrs, n_outputs):
    mode, ctm = attrs["mode"], attrs["coordinate_transformation_mode"]
    if attrs["axes"] is not None or attrs["keep_aspect_ratio_policy"] != "stretch":
        return "Resize with axes or keep_aspect_ratio_policy"
    if attrs["antialias"] and mode != "nearest":
        if ctm not in _ATEN_MODES:
            return f"Resize antialiased with coordinate_transformation_mode={ctm!r}"
        if not attrs["exclude_outside"] or (mode == "cubic" and attrs["cubic_coeff_a"] != -0.5):
            return (
                "Resize antialiased other than exclude_outside=1 (and cubic_coeff_a=-0.5 for "
                "cubic): torch's antialiased kernels"
            )
        return None
    if mode == "nearest":
        if ctm not in _NEAREST_COORDS:
            return f"Resize nearest with coordinate_transformation_mode={ctm!r}"
        return None
    if ctm not in _ATEN_MODES:
        return f"Resize {mode} with coordinate_transformation_mode={ctm!r}"
    if mode == "cubic" and (attrs["cubic_coeff_a"] != -0.75 or attrs["exclude_outside"]):
        return "Resize cubic other than cubic_coeff_a=-0.75, exclude_outside=0 (torch's bicubic)"
    return None


@onnx_op(
    "Resize",
    static=(1, 2, 3),
    refuses=_refusal,
    antialias=0,
    axes=None,
    coordinate_transformation_mode="half_pixel",
    cubic_coeff_a=-0.75,
    exclude_outside=0,
    extrapolation_value=0.0,
    keep_aspect_ratio_policy="stretch",
    mode="nearest",
    nearest_mode="round_prefer_floor",
)
def resize(node, x, roi=None, scales=None, sizes=None):
    if sizes is not None and np.size(sizes):
        out = [int(s) for s in np.asarray(sizes).reshape(-1)]
        factors = [None] * x.ndim
    else:
        factors = [float(s) for s in np.asarray(scales).reshape(-1)]
        out = [math.floor(n * f) for n, f in zip(x.shape, factors, strict=True)]
    if list(out[:-2]) != list(x.shape[:-2]):
        raise OnnxLoweringError(
            f"node {node.name!r} (Resize): only the last two axes can be resized, got sizes "
            f"{out} for an input of shape {list(x.shape)}"
        )
    mats = [_matrix(node, x.shape[a], out[a], factors[a]) for a in (-2, -1)]
    return separable(x, *mats)


def _matrix(node, n_in: int, n_out: int, scale: float | None) -> np.ndarray:
    mode, ctm = node["mode"], node["coordinate_transformation_mode"]
    if mode == "nearest":
        if ctm == "asymmetric" and node["nearest_mode"] == "floor":
            return nearest_matrix(n_in, n_out, scale, False)  # torch's nearest, ATen's rows
        return _nearest(node, n_in, n_out, scale)
    if ctm == "pytorch_half_pixel" and n_out == 1:
        m = np.zeros((1, n_in))
        m[0, 0] = 1.0  # pytorch_half_pixel: one output pixel samples the first input pixel
        return m
    align = ctm == "align_corners"
    if node["antialias"]:
        return antialias_matrix(n_in, n_out, align, None if align else scale, cubic=mode == "cubic")
    if align and scale is not None and n_in * scale != n_out:
        # ONNX aligns corners on the unrounded length n_in * scale; ATen on the output's
        raise OnnxLoweringError(
            f"node {node.name!r} (Resize): align_corners with a scale ({scale}) that does not "
            f"give a whole length ({n_in} * {scale}); give sizes instead of scales"
        )
    make = cubic_matrix if mode == "cubic" else linear_matrix
    return make(n_in, n_out, align, None if align else scale)


def _nearest(node, n_in: int, n_out: int, scale: float | None) -> np.ndarray:
    """One-hot rows of ONNX's nearest sampling for the modes ATen has no form of."""
    s = scale if scale is not None else n_out / n_in
    src = _NEAREST_COORDS[node["coordinate_transformation_mode"]](
        np.arange(n_out, dtype=np.float64), n_in, n_out, s
    )
    idx = np.clip(_ROUNDING[node["nearest_mode"]](src), 0, n_in - 1).astype(np.int64)
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), idx] = 1.0
    return m

"""``Conv`` and ``ConvTranspose`` through the torch lowering's convolution
(``interop/_src/lowering/ops/conv.py``: the same ``lax`` call and the CPU depthwise rewrite);
ONNX's asymmetric and automatic padding is adapted in ``_padding.py``."""

from __future__ import annotations

from interop._src.lowering.ops.conv import conv as aten_conv
from interop._src.onnx_lowering.ops._padding import split_pads, window_pads
from interop._src.onnx_lowering.registry import onnx_op


def _kernel_args(node, x, w):
    n = w.ndim - 2
    strides = node["strides"] or [1] * n
    dilations = node["dilations"] or [1] * n
    return n, list(strides), list(dilations)


@onnx_op(
    "Conv", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None
)
def conv(node, x, w, b=None):
    n, strides, dilations = _kernel_args(node, x, w)
    pads = window_pads(node["auto_pad"], node["pads"], x.shape[2:], w.shape[2:], strides, dilations)
    x, sym = split_pads(x, pads)
    return aten_conv(x, w, b, strides, sym, dilations, False, [0] * n, node["group"])


def _transpose_refusal(attrs, n_outputs):
    if attrs["output_shape"] is not None:
        return "ConvTranspose with output_shape= (give pads and output_padding instead)"
    if attrs["auto_pad"] not in ("NOTSET", "VALID"):
        return f"ConvTranspose with auto_pad={attrs['auto_pad']}"
    pads = attrs["pads"]
    if pads and any(pads[i] != pads[i + len(pads) // 2] for i in range(len(pads) // 2)):
        return "ConvTranspose with asymmetric pads"
    return None


@onnx_op(
    "ConvTranspose",
    refuses=_transpose_refusal,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    output_padding=None,
    output_shape=None,
    pads=None,
    strides=None,
)
def conv_transpose(node, x, w, b=None):
    n, strides, dilations = _kernel_args(node, x, w)
    pads = list(node["pads"] or [0] * 2 * n)[:n]
    out_pad = list(node["output_padding"] or [0] * n)
    return aten_conv(x, w, b, strides, pads, dilations, True, out_pad, node["group"])

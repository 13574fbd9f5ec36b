"""ONNX -> JAX: ``lower_onnx``, its error, and the ONNX op table.

``lower_onnx(path)`` reads an ONNX model (opset 13 or newer), checks every node against the
table and returns ``(forward, params, graph)``: ``forward(params, inputs)`` is a pure JAX
function and ``params`` the graph's float initializers as JAX arrays. Design notes:
``interop/_src/onnx_lowering/README.md``.
"""

from interop._src.onnx_lowering.errors import OnnxLoweringError
from interop._src.onnx_lowering.graph import shape_inputs
from interop._src.onnx_lowering.lower import lower_onnx
from interop._src.onnx_lowering.ops import OPS, onnx_op

__all__ = ["OPS", "OnnxLoweringError", "lower_onnx", "onnx_op", "shape_inputs"]

"""The ONNX op table, complete: importing this package imports every family module.

One module per family; a new op is one ``@onnx_op``-decorated function in its family module.
"""

from interop._src.onnx_lowering.ops import (  # noqa: F401  (imported to register their ops)
    activations,
    arithmetic,
    conv,
    indexing,
    linalg,
    norms,
    pooling,
    reductions,
    resize,
    shapes,
)
from interop._src.onnx_lowering.registry import OPS, TABLE, onnx_op

__all__ = ["OPS", "TABLE", "onnx_op"]

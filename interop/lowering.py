"""The torch -> JAX lowering: ``lower``, its error, and the op table it lowers with.

``lower(module, example)`` exports a torch module with ``torch.export``, checks every op of
the graph against the table, and returns a pure JAX ``forward(params, x)``; with
``train=True``, its train mode as ``forward(params, x, *, key) -> (y, new_buffers)``. ``OPS`` is the
table (op name -> JAX function, read-only); ``op`` registers a new one (here for a torch
custom op ``mylib::softclip``)::

    @interop.lowering.op("mylib.softclip.default")
    def softclip(x):
        return jnp.tanh(x)

Design notes (how a node flows, the dtype conventions, how to add an op to the project's
table): ``interop/_src/lowering/README.md``.
"""

from interop._src.lowering.errors import LoweringError
from interop._src.lowering.lower import lower
from interop._src.lowering.ops import OPS, op

__all__ = ["OPS", "LoweringError", "lower", "op"]

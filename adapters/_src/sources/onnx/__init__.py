"""`OnnxSpec`: an ONNX model served by ONNX Runtime on the caller's memory.

The session, its signature and the input checks are in ``session.py``; `build_onnx` and the
IO-binding runners in ``serve.py``; what an exported file says about its preprocessing in
``metadata.py``. An ONNX spec carries its own ``device``: the
``device`` argument of ``build`` may only repeat it (`check_device`).
"""

from __future__ import annotations

import specs

from ...adapter import Adapter
from ...devices import check_onnx_device
from .serve import build_onnx


def build(spec: specs.OnnxSpec, *, device: str | None = None) -> Adapter:
    """`build_onnx`: the spec runs where its own ``device`` field says (``check_device`` has
    checked the argument against it)."""
    return build_onnx(spec)


check_device = check_onnx_device

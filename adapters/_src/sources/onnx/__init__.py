"""`OnnxSpec`: an ONNX model served by ONNX Runtime on the caller's memory.

The session, its signature and the input checks are in ``onnx_session.py``; `build_onnx` and
the IO-binding runners in ``onnx_serve.py``. An ONNX spec carries its own ``device``: the
``device`` argument of ``build`` may only repeat it (`check_device`).
"""

from __future__ import annotations

import specs

from ..adapter import Adapter
from ..devices import check_onnx_device
from .onnx_serve import build_onnx


def build(spec: specs.OnnxSpec, *, device: str | None = None) -> Adapter:
    """`build_onnx`: the spec runs where its own ``device`` field says (``check_device`` has
    checked the argument against it)."""
    return build_onnx(spec)


check_device = check_onnx_device

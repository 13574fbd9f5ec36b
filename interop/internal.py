"""Helpers ``interop`` shares with its sibling packages (``adapters``), not part of the user API.

A sanctioned home, as ``equinox.internal`` is: another package imports these names from here,
never from ``interop._src``. What is here: the framework-neutral dtype names of torch tensors
and ONNX Runtime values.
"""

from interop._src.dtypes import ORT_TO_NAME, TORCH_TO_NAME

__all__ = ["ORT_TO_NAME", "TORCH_TO_NAME"]

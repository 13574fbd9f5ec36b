"""The ``torch`` runtime: the adapter as its source built it (the identity)."""

from __future__ import annotations

from typing import Any

from ..adapter import Adapter


def convert(adapter: Adapter, example_input: Any = None, **options: Any) -> Adapter:
    """``adapter`` itself (``example_input`` is not needed).

    Raises:
        TypeError: any ``options`` (this runtime takes none).
    """
    if options:
        raise TypeError(
            f"runtime='torch' takes no options, got {sorted(options)}; pass them to the "
            "runtime they belong to (runtime='onnxruntime' or 'jax')."
        )
    return adapter


def check_device(device: str | None) -> None:
    """Every device torch can reach is fine (the source places the params)."""

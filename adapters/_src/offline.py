"""Offline mode: fail fast with a clear message instead of waiting on a network."""

from __future__ import annotations

import os

from .errors import BuildError

_TRUE = {"1", "on", "yes", "true"}


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``FM_ADAPTERS_OFFLINE``) is set to a true value.

    One switch for every download (HuggingFace hub, timm weights, torch.hub repositories).
    """
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "FM_ADAPTERS_OFFLINE")
    )


def require_online(field: str, what: str, fix: str) -> None:
    """Raise `BuildError` when offline: ``what`` would need a download."""
    if is_offline():
        raise BuildError(
            field,
            f"{what} needs a download, but offline mode is on (HF_HUB_OFFLINE=1)",
            fix=fix,
        )

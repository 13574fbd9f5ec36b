"""Offline mode: fail fast with a clear message instead of waiting on a network."""

from __future__ import annotations

import functools
import os
import socket
import threading

from .errors import BuildError

_TRUE = {"1", "on", "yes", "true"}
#: the host every hub download goes through first; if its name does not resolve, no download can
#: succeed, and huggingface_hub would otherwise retry for a long while before saying so
_PROBE_HOST = "huggingface.co"
_PROBE_TIMEOUT_S = 3.0


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``FM_ADAPTERS_OFFLINE``) is set to a true value, or
    when the hub's host name does not resolve (checked once per process, at most 3 s).

    One switch for every download (HuggingFace hub, timm weights, torch.hub repositories).
    """
    return _flag() is not None or _hub_unreachable()


def offline_reason(host: str) -> str | None:
    """Why a download from ``host`` cannot happen, in words (``"HF_HUB_OFFLINE=1 is set"``,
    ``"github.com does not resolve"``), or None when it may.

    The switch of `is_offline`, but the host probed is the one the download needs: a
    torch.hub repository comes from GitHub, not from the HuggingFace hub.
    """
    flag = _flag()
    if flag is not None:
        return f"{flag} is set"
    if _unresolvable(host):
        return f"{host} does not resolve"
    return None


def _flag() -> str | None:
    for var in ("HF_HUB_OFFLINE", "FM_ADAPTERS_OFFLINE"):
        value = os.environ.get(var, "").strip()
        if value.lower() in _TRUE:
            return f"{var}={value}"
    return None


@functools.cache
def _hub_unreachable() -> bool:
    return _unresolvable(_PROBE_HOST)


@functools.cache
def _unresolvable(host: str) -> bool:
    resolved: list[bool] = []

    def probe() -> None:
        try:
            socket.getaddrinfo(host, 443)
            resolved.append(True)
        except OSError:
            resolved.append(False)

    # getaddrinfo has no timeout of its own: run it in a daemon thread and stop waiting
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S)
    return not (resolved and resolved[0])


def hub_cached(repo: str, filename: str) -> bool:
    """Whether ``filename`` of the HuggingFace hub repository ``repo`` is in the local cache."""
    return hub_cached_path(repo, filename) is not None


def hub_cached_path(repo: str, filename: str) -> str | None:
    """The local path of ``filename`` of hub repository ``repo`` if cached, else None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with timm and transformers
        return None
    try:
        hit = try_to_load_from_cache(repo, filename)
    except Exception:
        return None
    return hit if isinstance(hit, str) else None


def require_online(field: str, what: str, fix: str) -> None:
    """Raise `BuildError` when offline: ``what`` would need a download."""
    if is_offline():
        raise BuildError(
            field,
            f"{what} needs a download, but this process is offline "
            f"(HF_HUB_OFFLINE=1, or {_PROBE_HOST} does not resolve)",
            fix=fix,
        )

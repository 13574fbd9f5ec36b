"""The choices of ``runtime="auto"`` on disk: one entry per (spec and weights, device, input
signature, libraries, machine), holding the choice record with the timings it was made on.

An entry is a ``cache_entry.py`` entry (a directory named after the key holding
``choice.json`` and a ``meta.json`` with the full key, the weights digest and the file's
sha256), so it is checked on every hit, and an entry copied from another model, edited or cut
short is a miss with a `CacheWarning` naming it; it is published atomically. Entries live
under ``<cache root>/auto`` (``$FM_ADAPTERS_CACHE/auto``, or ``~/.cache/fm-adapters/auto``).

The key holds what every runtime key holds (``cache_key.source_payload``: the spec, the
module's architecture, the weights' digest, the input signature, torch's version) and what a
timing depends on besides: the spec's seed and precision (when it has them), the device (and
the GPU's name), the candidates, the versions of the libraries that run them, the CPU model,
its core count, torch's thread count and ``$XLA_FLAGS``. Another machine, or another library
version, measures again.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from specs.internal import atomic_write

from ...adapter import Adapter
from ..cache_entry import cache_root, discard, load, publish, staging
from ..cache_key import hex_key, source_payload

#: bumped whenever the record's layout or the key's make-up change
CACHE_FORMAT = 1
CHOICE_FILE = "choice.json"
#: how warnings name this cache
WHAT = "runtime='auto' choice"
#: the distributions whose versions change what the candidates run
LIBRARIES = ("torch", "onnxruntime", "onnx", "onnxscript", "jax", "jaxlib", "numpy")


def default_cache_dir() -> Path:
    """``<cache root>/auto``, beside the ONNX Runtime and JAX runtime caches."""
    return cache_root() / "auto"


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine(device: str) -> dict[str, Any]:
    """What a timing on ``device`` depends on besides the libraries: the CPU model, its core
    count, torch's intra-op thread count, ``$XLA_FLAGS`` and, on CUDA, the GPU's name."""
    found: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    if device.startswith("cuda"):
        found["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return found


def choice_key(
    adapter: Adapter,
    example: Any,
    device: str,
    candidates: Sequence[str],
    weights: str,
    batch_size: int,
) -> str:
    """The hex key a choice is cached under (see the module docstring)."""
    spec = adapter.spec
    payload = source_payload(adapter, example, True, weights)
    return hex_key(
        {
            **payload,
            "format": CACHE_FORMAT,
            "seed": getattr(spec, "seed", None),
            "precision": str(getattr(spec, "precision", None)),
            "device": device,
            "candidates": list(candidates),
            "batch_size": batch_size,
            "versions": _versions(),
            "machine": machine(device),
        }
    )


def load_choice(
    entry: Path, key: str, weights: str, candidates: Sequence[str]
) -> dict[str, Any] | None:
    """The choice record of an intact entry made for ``key`` from ``weights``; None when
    there is none. An entry that is not (see ``cache_entry.load``), or whose record does not
    name one of ``candidates``, is removed with a `CacheWarning`."""
    meta = load(entry, key, weights, WHAT)
    if meta is None:
        return None
    if CHOICE_FILE not in meta["files"]:
        return discard(entry, f"it lacks {CHOICE_FILE}", WHAT)
    try:
        record = json.loads((entry / CHOICE_FILE).read_text())
    except FileNotFoundError:
        return None  # removed by a concurrent rebuild since it was checked
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return discard(entry, f"{CHOICE_FILE} cannot be read ({err})", WHAT)
    if not isinstance(record, dict) or record.get("runtime") not in candidates:
        return discard(entry, f"{CHOICE_FILE} names no runtime of {list(candidates)}", WHAT)
    if not _timings_ok(record.get("timings"), candidates):
        why = f"{CHOICE_FILE}'s timings are not runtime -> {{'median_s': seconds}}"
        return discard(entry, why, WHAT)
    return record


def _timings_ok(timings: Any, candidates: Sequence[str]) -> bool:
    """Whether ``timings`` maps runtimes of ``candidates`` to a non-negative median (what the
    printed line reads back)."""
    if not isinstance(timings, dict):
        return False
    for name, found in timings.items():
        median = found.get("median_s") if isinstance(found, dict) else None
        number = isinstance(median, (int, float)) and not isinstance(median, bool)
        if name not in candidates or not number or not median >= 0:
            return False
    return True


def save_choice(
    entry: Path, key: str, weights: str, record: dict[str, Any], source: str
) -> str | None:
    """Write the entry aside and publish it (``cache_entry.publish``). ``source`` names where
    the cache location came from, for the warning when it cannot be written.

    Returns:
        None when an entry is in the cache now (this build's or a concurrent one's), else
        why not (after a `CacheWarning`).
    """
    with staging(entry, source, WHAT) as work:
        if work is None:
            return "the cache location cannot be used"
        with atomic_write(work / CHOICE_FILE) as staged:
            staged.write_text(json.dumps(record, indent=1))
        if publish(work, entry, {"key": key, "weights": weights}, WHAT) is None:
            return "an unusable entry is in the way"
        return None

"""Part 0: what the figures were measured on, and which backends each part can use."""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

from benchmarks.gpu._common import (
    Profile,
    Recorder,
    cuda_missing,
    error_text,
    jax_gpu_missing,
    ort_cuda_missing,
)

#: modules the library imports; a missing one is named with how to carry it
MODULES = ("torch", "jax", "jaxlib", "onnxruntime", "onnx", "onnxscript", "timm", "attrs")
MODULES += ("cattrs", "yaml", "safetensors", "ml_dtypes", "flax", "numpy")


def run(p: Profile) -> dict[str, Any]:
    """``{"checks": ..., "machine": {...}}``: versions, devices and missing backends."""
    rec = Recorder()
    machine: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "profile": "dry run (CPU)" if p.dry else "full (CUDA)",
    }
    for name in MODULES:
        try:
            machine[name] = getattr(importlib.import_module(name), "__version__", "present")
        except Exception as err:
            machine[name] = None
            rec.skip(f"module {name}", f"{error_text(err)}; carry its wheel (README.md)")
    import torch

    machine["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        machine["gpu"] = props.name
        machine["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        machine["compute_capability"] = f"{props.major}.{props.minor}"
    import jax
    import onnxruntime as ort

    machine["jax_devices"] = [str(d) for d in jax.devices()]
    machine["ort_providers"] = ort.get_available_providers()
    machine["torch_threads"] = torch.get_num_threads()
    for what, why in (
        ("torch CUDA", cuda_missing(p)),
        ("jax GPU backend", None if p.dry else jax_gpu_missing()),
        ("onnxruntime CUDA provider", None if p.dry else ort_cuda_missing()),
    ):
        if why:
            rec.skip(what, why)
    for lib in ("specs", "adapters", "interop"):
        rec.check(f"import {lib}", lambda lib=lib: bool(importlib.import_module(lib)))
    out = rec.result()
    out["machine"] = machine
    return out

"""`ModuleSpec`: an ``nn.Module`` class called with ``init_args``."""

from __future__ import annotations

import attrs
import torch

import specs

from ..adapter import Adapter
from ..imports import call_with, import_object
from . import _torch
from ._torch import finish, input_shape_of, require_module
from ._torch_low import construct_and_load


def build_module(spec: specs.ModuleSpec, *, device: str | None = None) -> Adapter:
    """Import ``spec.class_path``, call it with ``init_args``, load the checkpoint, move the
    module to ``device``."""
    cls = import_object(spec.class_path, "class_path")

    def make() -> torch.nn.Module:
        made = call_with(cls, spec.init_args, "init_args", spec.class_path)
        return require_module(made, "class_path", spec.class_path)

    module, loaded = construct_and_load(make, spec)
    info = {"input_shape": input_shape_of(module), **loaded}
    return finish(module, spec, info=info, device=device)


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_module
check_device = _torch.check_device


def _out_indices(spec: specs.ModuleSpec, value: object) -> specs.ModuleSpec:
    """Registry ``out_indices`` for a network that takes the argument itself (eva's radiology
    encoders)."""
    if "out_indices" not in spec.init_args:
        raise ValueError(f"({spec.class_path}) has no out_indices option")
    return attrs.evolve(spec, init_args={**spec.init_args, "out_indices": value})


REGISTRY_OVERRIDES = {"out_indices": _out_indices}

"""`FunctionSpec`: a factory (``timm.create_model``, ``torch.hub.load``, ...) called with
``arguments``, as eva's ``ModelFromFunction``."""

from __future__ import annotations

import torch

import specs

from ..adapter import Adapter
from ..imports import call_with, import_object
from . import _torch
from ._torch import finish, input_shape_of, require_module
from ._torch_low import construct_and_load


def build_function(spec: specs.FunctionSpec, *, device: str | None = None) -> Adapter:
    """Import ``spec.path``, call it with ``arguments``, load the checkpoint, move the module
    to ``device``."""
    fn = import_object(spec.path, "path")
    if not callable(fn):
        from ..errors import BuildError

        raise BuildError("path", f"{spec.path!r} is not callable", got=fn)

    def make() -> torch.nn.Module:
        made = call_with(fn, spec.arguments, "arguments", spec.path)
        return require_module(made, "path", spec.path)

    module, loaded = construct_and_load(make, spec)
    info = {"input_shape": input_shape_of(module), **loaded}
    return finish(module, spec, info=info, device=device)


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_function
check_device = _torch.check_device

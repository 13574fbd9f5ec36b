"""`FunctionSpec`: a factory (``timm.create_model``, ``torch.hub.load``, ...) called with
``arguments``, as eva's ``ModelFromFunction``."""

from __future__ import annotations

import specs

from ..adapter import Adapter
from ..imports import call_with, import_object
from . import _torch
from ._torch import finish, input_shape_of, load_checkpoint, require_module


def build_function(spec: specs.FunctionSpec, *, device: str | None = None) -> Adapter:
    """Import ``spec.path``, call it with ``arguments``, load the checkpoint, move the module
    to ``device``."""
    fn = import_object(spec.path, "path")
    if not callable(fn):
        from ..errors import BuildError

        raise BuildError("path", f"{spec.path!r} is not callable", got=fn)
    module = require_module(
        call_with(fn, spec.arguments, "arguments", spec.path), "path", spec.path
    )
    load_checkpoint(module, spec)
    return finish(module, spec, info={"input_shape": input_shape_of(module)}, device=device)


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_function
check_device = _torch.check_device

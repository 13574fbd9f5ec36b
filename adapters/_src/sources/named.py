"""`RegistrySpec`: a registry name, resolved to its spec (data) and built."""

from __future__ import annotations

import attrs

import specs

from ..adapter import Adapter
from ..registry import registry_spec
from ..seeding import with_seed
from .table import dispatch


def build_registry(spec: specs.RegistrySpec, *, device: str | None = None) -> Adapter:
    """Build the entry's spec with ``model_kwargs`` applied, on ``device``; ``spec.transforms``
    run after the entry's own, and ``spec.seed`` (when set) replaces the entry's. ``adapter.spec``
    is the resolved spec; ``info["registry"]`` the name."""
    resolved = with_seed(registry_spec(spec.model_name, spec.model_kwargs), spec.seed)
    if spec.transforms:
        resolved = attrs.evolve(resolved, transforms=(*resolved.transforms, *spec.transforms))
    adapter = dispatch(resolved, device)
    return attrs.evolve(
        adapter, info={**adapter.info, "registry": spec.model_name, "registry_spec": spec}
    )


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_registry

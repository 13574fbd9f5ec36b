"""The source table: spec record type -> `Source` (its YAML tag and its builder).

A built-in source is the module `BUILTIN` names for its spec's ``source:`` tag
(``specs.SOURCES``), imported on first use, so that building a timm spec never imports
transformers or flax. It exposes ``build(spec, *, device)`` and, if the device must be checked
before any weights load, ``check_device(spec, device)``; the registry ``model_kwargs`` whose
meaning depends on the source, ``REGISTRY_OVERRIDES``. `register_source` adds a user's source
and teaches ``specs`` its tag.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

import specs

from ..adapter import Adapter
from ..devices import check_placed
from ..errors import BuildError
from ..seeding import seed_of, seeded

#: the built-in sources: ``source:`` tag (``specs.SOURCES``) -> the module that builds it
BUILTIN: dict[str, str] = {
    "registry": "adapters._src.sources.named",
    "module": "adapters._src.sources.module",
    "function": "adapters._src.sources.function",
    "torch_hub": "adapters._src.sources.torch_hub",
    "timm": "adapters._src.sources.timm",
    "huggingface": "adapters._src.sources.huggingface",
    "onnx": "adapters._src.sources.onnx",
    "custom": "adapters._src.sources.custom",
    "flax": "adapters._src.sources.flax",
}


@attrs.frozen
class Source:
    """One source: the record it builds, its ``source:`` tag, and how to build it.

    Attributes:
        spec_type: the spec record type.
        tag: its ``source:`` tag in YAML.
        build: ``build(spec, *, device)``; for a user builder without a ``device`` keyword,
            ``places`` is false and it is called as ``build(spec)``.
        places: whether ``build`` takes ``device`` (else `dispatch` checks the placement).
        check_device: ``check_device(spec, device)``, run before ``build`` (a missing GPU fails
            before any weights load); None when there is nothing to check early.
        registry_overrides: ``{model_kwargs key: override(spec, value) -> spec}`` for the
            registry keys whose meaning depends on the source (``out_indices``).
    """

    spec_type: type
    tag: str
    build: Callable[..., Adapter]
    places: bool = True
    check_device: Callable[[Any, str], Any] | None = None
    registry_overrides: Mapping[str, Callable[[Any, Any], Any]] = attrs.field(factory=dict)


_USER: dict[type, Source] = {}


def default_tag(spec_type: type) -> str:
    """``ScaleSpec`` -> ``"scale"``: the class name in snake case, without a ``Spec`` suffix."""
    name = spec_type.__name__
    name = name[: -len("Spec")] if name.endswith("Spec") and name != "Spec" else name
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _takes_device(builder: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    p = parameters.get("device")
    return p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)


def register_source(
    spec_type: type,
    builder: Callable[..., Adapter],
    *,
    tag: str | None = None,
    overwrite: bool = False,
) -> None:
    """Teach `build` a new kind of source, and ``specs`` its YAML tag.

    Args:
        spec_type: the (frozen attrs) record type describing the source.
        builder: ``builder(spec, *, device=None) -> Adapter`` (or ``builder(spec)``, whose params
            `build` then checks are where ``device`` asks). It may build nested specs with
            ``adapters.build``.
        tag: its ``source:`` tag in YAML; default `default_tag` (``ScaleSpec`` -> ``scale``),
            which then names the latest class registered under it (pass ``tag`` to keep two
            classes of the same name apart).
        overwrite: replace an existing builder for ``spec_type`` (built-ins included) and an
            existing tag.

    Raises:
        TypeError: ``spec_type`` is not an attrs class or ``builder`` is not callable.
        ValueError: ``spec_type`` already has a builder and ``overwrite`` is false, or the
            tag is taken or malformed (see ``specs.register_source_tag``).

    Example:
        >>> @attrs.frozen
        ... class RandomProjection:
        ...     dim: int
        ...     transforms: tuple = ()
        >>> adapters.register_source(RandomProjection, build_random_projection)
        >>> adapters.build(specs.loads("{source: random_projection, dim: 8}"))
    """
    if not isinstance(spec_type, type):
        raise TypeError(
            f"register_source: spec_type must be a class (a spec record type), got "
            f"{spec_type!r} ({type(spec_type).__name__})."
        )
    if not callable(builder):
        raise TypeError(
            f"register_source: builder must be callable as builder(spec) -> Adapter, got "
            f"{builder!r} ({type(builder).__name__})."
        )
    builtin = spec_type in specs.SPEC_TYPES
    if not overwrite and (spec_type in _USER or builtin):
        raise ValueError(
            f"register_source: {spec_type.__name__} already has a builder. Pass "
            "overwrite=True to replace it."
        )
    check = None
    if builtin:
        tag = next(t for t, cls in specs.SOURCES.items() if cls is spec_type)
        check = _builtin(spec_type).check_device  # a missing GPU still fails before loading
    else:
        # a defaulted tag follows the latest class of that name (a re-run notebook cell)
        replace = overwrite or tag is None
        tag = default_tag(spec_type) if tag is None else tag
        specs.register_source_tag(tag, spec_type, overwrite=replace)
    _USER[spec_type] = Source(
        spec_type, tag, builder, places=_takes_device(builder), check_device=check
    )


def _builtin(kind: type) -> Source | None:
    tag = next((t for t, cls in specs.SOURCES.items() if cls is kind), None)
    if tag is None:
        return None
    module = importlib.import_module(BUILTIN[tag])
    return Source(
        kind,
        tag,
        module.build,
        check_device=getattr(module, "check_device", None),
        registry_overrides=getattr(module, "REGISTRY_OVERRIDES", {}),
    )


def source_for(spec: Any) -> Source:
    """The `Source` that builds ``spec`` (user sources first).

    Raises:
        BuildError: no source builds this type (lists the known spec types).
    """
    kind = type(spec)
    found = _USER.get(kind) or _builtin(kind)
    if found is not None:
        return found
    known = sorted({t.__name__ for t in (*specs.SPEC_TYPES, *_USER)})
    raise BuildError(
        "spec",
        f"no builder for {kind.__name__}",
        expected=f"a spec record ({', '.join(known)}), a registry name, or a dict",
        got=spec,
        fix="Register one with adapters.register_source(spec_type, builder)",
    )


def as_spec(spec: Any) -> Any:
    """A registry name becomes a `RegistrySpec`, a dict goes through ``specs.structure``."""
    if isinstance(spec, str):
        return specs.RegistrySpec(model_name=spec)
    if isinstance(spec, Mapping):
        return specs.structure(spec)
    return spec


def registry_override(spec: Any, key: str) -> Callable[[Any, Any], Any] | None:
    """The source's override of a registry ``model_kwargs`` key for ``spec`` (None: none)."""
    kind = type(spec)
    # the overrides follow the spec record, so a built-in record keeps its own even when a
    # user replaced its builder
    source = _builtin(kind) if kind in specs.SPEC_TYPES else _USER.get(kind)
    return None if source is None else source.registry_overrides.get(key)


def dispatch(spec: Any, device: str | None, *, seed: int | None = None) -> Adapter:
    """Build a spec record with its source, on ``device`` (a canonical name or None), with
    torch's generator seeded by ``seed`` (None: the spec's own ``seed``, default 0) and restored
    afterwards (`seeding.seeded`).

    Raises:
        BuildError: no source for the spec, the builder did not return an `Adapter`, or a
            builder without a ``device`` keyword left params elsewhere.
    """
    source = source_for(spec)
    if device is not None and source.check_device is not None:
        source.check_device(spec, device)
    places = device is not None and source.places
    with seeded(seed_of(spec, seed)):
        adapter = source.build(spec, device=device) if places else source.build(spec)
    if not isinstance(adapter, Adapter):
        raise BuildError(
            "spec",
            f"the builder for {type(spec).__name__} returned {type(adapter).__name__}, "
            "not an adapters.Adapter",
            fix="Make the builder return adapters.Adapter(forward=..., params=..., spec=...)",
        )
    if device is not None and not places:
        check_placed(adapter, device, spec)
    return adapter


def unregister_source(spec_type: type) -> None:
    """Forget a source added with `register_source`, and its YAML tag (no-op when absent)."""
    source = _USER.pop(spec_type, None)
    if source is not None and spec_type not in specs.SPEC_TYPES:
        specs.unregister_source_tag(source.tag)

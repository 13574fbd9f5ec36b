"""Spec records -> plain data in our format (dicts, lists and scalars), the inverse of
`structure`: ``structure(unstructure(spec)) == spec`` for every record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from . import interpolate
from .errors import Location, SpecError
from .records import (
    RENAMED,
    TRANSFORM_TYPES,
    Spec,
    Transform,
    transform_tag,
)
from .tags import source_of, spec_types


def unstructure(spec: Spec) -> dict[str, Any]:
    """A spec record as plain data in our format: ``source:`` first, then the required
    fields and the fields that differ from their defaults (dicts, lists and scalars only).

    ``structure(unstructure(spec)) == spec`` for every record. Strings containing ``${``
    are escaped (``\\${``) so that loading them back does not interpolate.

    Args:
        spec: a spec record.

    Returns:
        ``{"source": tag, **fields}``, e.g. ``{"source": "timm", "model_name": "resnet18",
        "pretrained": False}``.

    Raises:
        SpecError: ``spec`` is not a spec record, or holds values that are not plain data.
    """
    if not isinstance(spec, spec_types()):
        raise SpecError(
            (),
            "a spec record (" + ", ".join(cls.__name__ for cls in spec_types()) + ")",
            spec,
        )
    out: dict[str, Any] = {"source": source_of(spec)}
    out.update(_fields_of(spec, RENAMED.get(type(spec), {})))
    return out


def unstructure_transform(transform: Transform) -> str | dict[str, Any]:
    """A transform record as plain data.

    Args:
        transform: a transform record.

    Returns:
        Its tag alone when every field is at its default (``"cls_token"``), else
        ``{"transform": tag, **non_default_fields}``.

    Raises:
        SpecError: ``transform`` is not a transform record.
    """
    if not isinstance(transform, TRANSFORM_TYPES):
        raise SpecError(
            (),
            "a transform record (" + ", ".join(c.__name__ for c in TRANSFORM_TYPES) + ")",
            transform,
        )
    fields = _fields_of(transform, {})
    tag = transform_tag(transform)
    return {"transform": tag, **fields} if fields else tag


def _fields_of(record: Any, renamed: Mapping[str, str]) -> dict[str, Any]:
    """The required fields and those that differ from their defaults, in field order."""
    out: dict[str, Any] = {}
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[misc]
        if default is not attrs.NOTHING and _same(value, default):
            continue
        key = renamed.get(field.name, field.name)
        if field.name == "transforms":
            out[key] = [unstructure_transform(t) for t in value]
        else:
            out[key] = _plain(value, (key,))
    return out


def _same(value: Any, default: Any) -> bool:
    # type first: 1 == True and 1.0 == 1, but they are different values to write
    return (type(value) is type(default) and value == default) or (
        value is None and default is None
    )


def _plain(value: Any, location: Location) -> Any:
    if isinstance(value, str):
        return interpolate.escape(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError((*location, key), "string keys", key)
            out[key] = _plain(item, (*location, key))
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, (*location, i)) for i, item in enumerate(value)]
    raise SpecError(location, "plain data (string, number, boolean, null, list or mapping)", value)

"""Plain data (dicts, lists, scalars; our format or eva's) <-> spec records, with cattrs.

Our format tags a backbone with ``source:`` and a transform with ``transform:``::

    {source: timm, model_name: vit_tiny_patch16_224, pretrained: false,
     transforms: [{transform: cls_token, num_register_tokens: 4}]}

A bare string is a registry name (a backbone) or a transform tag (a transform). eva configs
(``class_path`` + ``init_args``) are translated by `eva` first. Either may sit under a
top-level ``backbone:`` key. Every failure is a `SpecError` naming the field path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import BaseValidationError, ForbiddenExtraKeysError

from . import eva, interpolate
from .errors import Location, SpecError, closest
from .frozen import FrozenDict
from .records import (
    SOURCES,
    SPEC_TYPES,
    TRANSFORM_TYPES,
    TRANSFORMS,
    RegistrySpec,
    Spec,
    TorchHubSpec,
    Transform,
    source_of,
    transform_tag,
)

#: in our format, `TorchHubSpec.source` (torch.hub's github / local) is written
#: ``hub_source:`` because ``source:`` is the record tag
_RENAMED = {TorchHubSpec: {"source": "hub_source"}}

_SPEC_SHAPES = (
    "a spec: a registry name (string), a mapping with a 'source:' key, "
    "or an eva mapping with a 'class_path:' key"
)
_TRANSFORM_SHAPES = (
    "a transform: a name such as 'cls_token', a mapping with a 'transform:' key, "
    "or an eva mapping with a 'class_path:' key"
)


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------


def structure(obj: Any) -> Spec:
    """Build a spec record from plain data: our format, an eva config, or a registry name.

    ``${oc.env:VAR, default}`` interpolations in strings are resolved first.

    Args:
        obj: a mapping (``{source: timm, model_name: ...}``, or an eva ``{class_path: ...,
            init_args: ...}``, either optionally under ``backbone:``), a registry name, or a
            spec record (returned unchanged).

    Returns:
        The spec record.

    Raises:
        SpecError: naming the field path, what was expected and what was got.

    Example:
        >>> specs.structure({"source": "timm", "model_name": "vit_tiny_patch16_224"})
        TimmSpec(model_name='vit_tiny_patch16_224', pretrained=True, ...)
    """
    if isinstance(obj, SPEC_TYPES):
        return obj
    return _structure_spec(interpolate.resolve(obj), ())


def structure_transform(obj: Any) -> Transform:
    """Build a transform record: ``"cls_token"``, ``{transform: cls_token, index: 0}``, or an
    eva ``{class_path: eva.models.networks.transforms.ExtractCLSFeatures, init_args: ...}``.

    Raises:
        SpecError: naming the field path, what was expected and what was got.
    """
    if isinstance(obj, TRANSFORM_TYPES):
        return obj
    return _structure_transform(interpolate.resolve(obj), ())


def unstructure(spec: Spec) -> dict[str, Any]:
    """A spec record as plain data in our format: ``source:`` first, then the required
    fields and the fields that differ from their defaults (dicts, lists and scalars only).

    ``structure(unstructure(spec)) == spec`` for every record. Strings containing ``${``
    are escaped (``\\${``) so that loading them back does not interpolate.

    Raises:
        SpecError: ``spec`` is not a spec record, or holds values that are not plain data.
    """
    if not isinstance(spec, SPEC_TYPES):
        raise SpecError(
            (),
            "a spec record (" + ", ".join(cls.__name__ for cls in SPEC_TYPES) + ")",
            spec,
        )
    out: dict[str, Any] = {"source": source_of(spec)}
    out.update(_fields_of(spec, _RENAMED.get(type(spec), {})))
    return out


def unstructure_transform(transform: Transform) -> str | dict[str, Any]:
    """A transform record as plain data: its tag alone when every field is at its default,
    else ``{transform: tag, **non_default_fields}``."""
    if not isinstance(transform, TRANSFORM_TYPES):
        raise SpecError(
            (),
            "a transform record (" + ", ".join(c.__name__ for c in TRANSFORM_TYPES) + ")",
            transform,
        )
    fields = _fields_of(transform, {})
    tag = transform_tag(transform)
    return {"transform": tag, **fields} if fields else tag


# ---------------------------------------------------------------------------------------------
# dispatch on the shape of the data
# ---------------------------------------------------------------------------------------------


def _structure_spec(obj: Any, location: Location) -> Spec:
    if isinstance(obj, str):
        if not obj.strip():
            raise SpecError(location, "a registry name (a non-empty string)", obj)
        return RegistrySpec(model_name=obj)
    if not isinstance(obj, Mapping):
        raise SpecError(location, _SPEC_SHAPES, obj)
    _check_keys_are_strings(obj, location)
    if "backbone" in obj:
        for key in obj:
            if key != "backbone":
                raise SpecError(
                    (*location, key),
                    "nothing next to 'backbone' (a spec file describes one backbone)",
                    key,
                    hint="Remove it, or move it under 'backbone'.",
                )
        return _structure_spec(obj["backbone"], (*location, "backbone"))
    if "source" in obj:
        return _structure_ours(obj, location)
    if "class_path" in obj:
        return _structure_translated(eva.translate_model(obj, location))
    raise _shape_error(obj, location, ("source", "class_path", "backbone"), _SPEC_SHAPES)


def _structure_transform(obj: Any, location: Location) -> Transform:
    if isinstance(obj, TRANSFORM_TYPES):
        return obj
    if isinstance(obj, str):
        if "." in obj:  # an eva class path without arguments
            return _structure_translated(eva.translate_transform({"class_path": obj}, location))
        if obj not in TRANSFORMS:
            raise SpecError(location, "a transform name", obj, choices=TRANSFORMS)
        return TRANSFORMS[obj]()
    if not isinstance(obj, Mapping):
        raise SpecError(location, _TRANSFORM_SHAPES, obj)
    _check_keys_are_strings(obj, location)
    if "transform" in obj:
        tag = obj["transform"]
        if not isinstance(tag, str) or tag not in TRANSFORMS:
            raise SpecError((*location, "transform"), "a transform name", tag, choices=TRANSFORMS)
        cls = TRANSFORMS[tag]
        data = {key: value for key, value in obj.items() if key != "transform"}
        _check_unknown(data, cls, location, f"transform '{tag}'", {})
        return structure_record(cls, data, location, f"transform '{tag}'")
    if "class_path" in obj:
        return _structure_translated(eva.translate_transform(obj, location))
    raise _shape_error(obj, location, ("transform", "class_path"), _TRANSFORM_SHAPES)


def _structure_ours(obj: Mapping[str, Any], location: Location) -> Spec:
    tag = obj["source"]
    if not isinstance(tag, str) or tag not in SOURCES:
        raise SpecError((*location, "source"), "a source name", tag, choices=SOURCES)
    cls = SOURCES[tag]
    renamed = _RENAMED.get(cls, {})
    keymap = {field: (key,) for field, key in renamed.items()}
    data = {key: value for key, value in obj.items() if key != "source"}
    _check_unknown(data, cls, location, f"source '{tag}'", renamed)
    for field, key in renamed.items():
        if key in data:
            data[field] = data.pop(key)
    return structure_record(cls, data, location, f"source '{tag}'", keymap)


def _structure_translated(translated: eva.Translated) -> Any:
    return structure_record(
        translated.record, translated.data, translated.base, translated.owner, translated.keymap
    )


def _check_keys_are_strings(obj: Mapping[Any, Any], location: Location) -> None:
    for key in obj:
        if not isinstance(key, str):
            raise SpecError((*location, key), "string keys (field names)", key)


def _check_unknown(
    data: Mapping[str, Any], cls: type, location: Location, owner: str, renamed: Mapping[str, str]
) -> None:
    names = [renamed.get(f.name, f.name) for f in attrs.fields(cls)]
    for key in data:
        if key not in names:
            raise SpecError(
                (*location, key),
                f"a field of {owner} ({cls.__name__})",
                key,
                choices=names,
                hint="Remove or rename it.",
            )


def _shape_error(
    obj: Mapping[str, Any], location: Location, tags: tuple[str, ...], shapes: str
) -> SpecError:
    keys = list(obj)
    for key in keys:
        close = [t for t in tags if key.lower() == t or _similar(key, t)]
        if close:
            return SpecError(
                (*location, key), f"one of the keys {', '.join(tags)}", key, choices=tags
            )
    return SpecError(
        location, shapes, obj, hint=f"The keys given were: {', '.join(keys) or 'none'}."
    )


def _similar(a: str, b: str) -> bool:
    return bool(closest(a, [b]))


# ---------------------------------------------------------------------------------------------
# cattrs: one record from a dict of its fields
# ---------------------------------------------------------------------------------------------


def structure_record(
    cls: type,
    data: Mapping[str, Any],
    location: Location = (),
    owner: str | None = None,
    keymap: Mapping[str, Location] | None = None,
) -> Any:
    """Structure one record of type ``cls`` from a dict of its field names with cattrs.

    Args:
        cls: a spec or transform record type.
        data: field name -> value.
        location: where ``data`` sits in the config.
        owner: how messages name the record (``"source 'timm'"``, ``"eva TimmModel"``).
        keymap: field name -> where its value sits relative to ``location``, when that key
            is not the field name (eva argument names).

    Raises:
        SpecError: the first problem found, located in the user's own keys.
    """
    keymap = keymap or {}
    try:
        return _converter().structure(dict(data), cls)
    except Exception as err:  # cattrs groups, SpecErrors from validators and hooks
        problems = _flatten(err, (), cls, owner or cls.__name__)
        if not problems:
            raise
    located = [_place(problem, location, keymap) for problem in problems]
    first = located[0]
    if len(located) > 1:
        others = ", ".join(p.path for p in located[1:])
        first = SpecError(
            first.location,
            first.expected,
            first.got,
            choices=first.choices,
            hint=f"{first.hint + ' ' if first.hint else ''}(Also invalid: {others}.)",
            show_got=first.show_got,
        )
    raise first from None


def _place(problem: SpecError, location: Location, keymap: Mapping[str, Location]) -> SpecError:
    """Move a problem located by field name to where the user wrote that field."""
    if not problem.location:
        return problem.relocated(location)
    head, *rest = problem.location
    return problem.relocated((*location, *keymap.get(str(head), (head,)), *rest))


def _flatten(err: BaseException, location: Location, cls: type, owner: str) -> list[SpecError]:
    """cattrs' nested exception groups -> SpecErrors located relative to the record."""
    if isinstance(err, SpecError):
        return [err.relocated((*location, *err.location))]
    if isinstance(err, ForbiddenExtraKeysError):
        names = [f.name for f in attrs.fields(err.cl)]
        return [
            SpecError((*location, key), f"a field of {owner}", key, choices=names)
            for key in sorted(err.extra_fields)
        ]
    if isinstance(err, BaseValidationError):
        out: list[SpecError] = []
        for sub in err.exceptions:
            sub_location = location
            for note in getattr(sub, "__notes__", ()):
                name = getattr(note, "name", None)
                index = getattr(note, "index", None)
                if isinstance(name, str):
                    sub_location = (*location, name)
                elif isinstance(index, int):
                    sub_location = (*location, index)
            if isinstance(sub, KeyError) and sub_location != location:
                field = attrs.fields_dict(cls).get(str(sub_location[-1]))
                out.append(
                    SpecError(
                        sub_location,
                        f"a value for this required field of {owner}"
                        + (f" ({_describe_type(field.type)})" if field is not None else ""),
                        show_got=False,
                        hint="It is missing: add it.",
                    )
                )
            else:
                out.extend(_flatten(sub, sub_location, cls, owner))
        return out
    return [
        SpecError(location, "a valid value", show_got=False, hint=f"{type(err).__name__}: {err}")
    ]


def _describe_type(tp: Any) -> str:
    names = {str: "a string", bool: "true or false", int: "an integer", FrozenDict: "a mapping"}
    return names.get(tp, str(tp).replace("typing.", ""))


@functools.cache
def _converter() -> cattrs.Converter:
    """The cattrs converter: strict scalars (no ``str(1)`` or ``bool("no")`` coercion)."""
    for cls in (*SPEC_TYPES, *TRANSFORM_TYPES):
        attrs.resolve_types(cls)
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)

    def hook(tp: Any, fn: Callable[[Any], Any]) -> None:
        if isinstance(tp, type):  # classes dispatch directly, ahead of predicate hooks
            converter.register_structure_hook(tp, lambda value, _: fn(value))
        else:
            converter.register_structure_hook_func(lambda t: t == tp, lambda value, _: fn(value))

    hook(str, _strict(str, "a string"))
    hook(bool, _strict(bool, "a boolean (true or false)"))
    hook(int, _strict(int, "an integer"))
    hook(float, _strict((int, float), "a number"))
    hook(str | int, _strict((str, int), "a name (string) or an index (integer)"))
    hook(FrozenDict, _mapping)
    hook(tuple[str, ...], _sequence_of(str, "a list of strings"))
    hook(tuple[int, ...], _sequence_of(int, "a list of integers"))
    hook(int | tuple[int, ...] | None, _int_or_ints)
    hook(tuple[Transform, ...], _transforms)
    return converter


def _strict(types: type | tuple[type, ...], expected: str) -> Callable[[Any], Any]:
    def structure(value: Any) -> Any:
        if isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)
        ):
            raise SpecError((), expected, value)
        if not isinstance(value, types):
            raise SpecError((), expected, value)
        return value

    return structure


def _mapping(value: Any) -> FrozenDict:
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise SpecError((), "a mapping of argument names to values", value)
    _check_keys_are_strings(value, ())
    return FrozenDict(value)


def _sequence_of(item: type, expected: str) -> Callable[[Any], tuple[Any, ...]]:
    check = _strict(item, expected)

    def structure(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise SpecError((), expected, value)
        for i, element in enumerate(value):
            try:
                check(element)
            except SpecError as err:
                raise SpecError((i,), f"each item to be {_describe_type(item)}", element) from err
        return tuple(value)

    return structure


def _int_or_ints(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return _sequence_of(int, "a list of integers")(value)
    raise SpecError(
        (), "null, an integer n (the last n blocks) or a list of integer block indices", value
    )


def _transforms(value: Any) -> tuple[Transform, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Mapping, *TRANSFORM_TYPES)):
        # eva's tensor_transforms is one callable: one transform
        return (_structure_transform(value, ()),)
    if not isinstance(value, (list, tuple)):
        raise SpecError(
            (), f"a list of transforms, each {_TRANSFORM_SHAPES[len('a transform: ') :]}", value
        )
    return tuple(_structure_transform(item, (i,)) for i, item in enumerate(value))


# ---------------------------------------------------------------------------------------------
# unstructure
# ---------------------------------------------------------------------------------------------


def _fields_of(record: Any, renamed: Mapping[str, str]) -> dict[str, Any]:
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

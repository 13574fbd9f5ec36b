"""Plain data (our format or eva's) -> spec records: the shape of the data picks the record.

Our format tags a backbone with ``source:`` and a transform with ``transform:``::

    {source: timm, model_name: vit_tiny_patch16_224, pretrained: false,
     transforms: [{transform: cls_token, num_register_tokens: 4}]}

A bare string is a registry name (a backbone) or a transform tag (a transform). eva configs
(``class_path`` + ``init_args``) are translated by `eva` first. Either may sit under a
top-level ``backbone:`` key. Every failure is a `SpecError` naming the field path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from . import eva, interpolate
from .converter import check_keys_are_strings, make_converter, structure_record
from .errors import Location, SpecError, closest
from .precision import trainer_precision
from .records import (
    RENAMED,
    TRANSFORM_TYPES,
    TRANSFORMS,
    RegistrySpec,
    Spec,
    Transform,
)
from .tags import BUILTIN_TAGS, source_table, spec_types

_SPEC_SHAPES = (
    "a spec: a registry name (string), a mapping with a 'source:' key, "
    "or an eva mapping with a 'class_path:' key"
)
_TRANSFORM_SHAPES = (
    "a transform: a name such as 'cls_token', a mapping with a 'transform:' key, "
    "or an eva mapping with a 'class_path:' key"
)


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
    if isinstance(obj, spec_types()):
        return obj
    return _structure_spec(interpolate.resolve(obj), ())


def structure_transform(obj: Any) -> Transform:
    """Build a transform record from plain data.

    Args:
        obj: a transform name (``"cls_token"``), a mapping in our format (``{transform:
            cls_token, index: 0}``), an eva config (``{class_path:
            eva.models.networks.transforms.ExtractCLSFeatures, init_args: ...}``) or a
            transform record (returned unchanged).

    Returns:
        The transform record.

    Raises:
        SpecError: naming the field path, what was expected and what was got.

    Example:
        >>> specs.structure_transform({"transform": "cls_token", "num_register_tokens": 4})
        ClsToken(index=0, num_register_tokens=4, include_patch_mean=False)
    """
    if isinstance(obj, TRANSFORM_TYPES):
        return obj
    return _structure_transform(interpolate.resolve(obj), ())


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
    check_keys_are_strings(obj, location)
    if "backbone" in obj:
        for key in obj:
            if key not in ("backbone", "trainer"):
                raise SpecError(
                    (*location, key),
                    "nothing next to 'backbone' but eva's 'trainer' precision (a spec file "
                    "describes one backbone)",
                    key,
                    hint="Remove it, or move it under 'backbone'.",
                )
        spec = _structure_spec(obj["backbone"], (*location, "backbone"))
        if "trainer" in obj:
            spec = _with_trainer_precision(spec, obj["trainer"], (*location, "trainer"))
        return spec
    if "source" in obj:
        return _structure_tagged(obj, location, "source", source_table())
    if "class_path" in obj:
        return _structure_translated(eva.translate_model(obj, location))
    raise _shape_error(obj, location, ("source", "class_path", "backbone"), _SPEC_SHAPES)


def _with_trainer_precision(spec: Spec, trainer: Any, location: Location) -> Spec:
    """``spec`` at the precision of eva's ``trainer:`` beside its ``backbone:`` (Lightning's
    setting, where eva writes it); a backbone setting another precision is a conflict."""
    value = trainer_precision(trainer, location)
    fields = attrs.fields_dict(type(spec))
    if "precision" not in fields:
        raise SpecError(
            (*location, "init_args", "precision"),
            f"no precision: the backbone's record ({type(spec).__name__}) has no precision field",
            value,
        )
    own = spec.precision
    if own not in (None, fields["precision"].default, value):
        raise SpecError(
            (*location, "init_args", "precision"),
            f"the backbone's own precision ({own}) or none",
            value,
            hint="Set the precision in one place.",
        )
    return attrs.evolve(spec, precision=value)


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
    check_keys_are_strings(obj, location)
    if "transform" in obj:
        return _structure_tagged(obj, location, "transform", TRANSFORMS)
    if "class_path" in obj:
        return _structure_translated(eva.translate_transform(obj, location))
    raise _shape_error(obj, location, ("transform", "class_path"), _TRANSFORM_SHAPES)


def _structure_transforms(value: Any) -> tuple[Transform, ...]:
    """A ``transforms:`` field: a list of transforms, or one (eva's ``tensor_transforms``)."""
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


def _structure_tagged(
    obj: Mapping[str, Any], location: Location, tag_key: str, records: Mapping[str, type]
) -> Any:
    """Our format: ``{<tag_key>: <tag>, **fields}``, the tag naming the record type."""
    tag = obj[tag_key]
    if not isinstance(tag, str) or tag not in records:
        raise SpecError((*location, tag_key), f"a {tag_key} name", tag, choices=records)
    cls = records[tag]
    owner = f"{tag_key} '{tag}'"
    renamed = RENAMED.get(cls, {})
    data = {key: value for key, value in obj.items() if key != tag_key}
    _check_unknown(data, cls, location, owner, renamed)
    for field, key in renamed.items():
        if key in data:
            data[field] = data.pop(key)
    keymap = {field: (key,) for field, key in renamed.items()}
    if tag_key == "source" and tag not in BUILTIN_TAGS and "transforms" in data:
        # a user record may annotate ``transforms`` loosely (``tuple``): read it as ours
        data["transforms"] = _user_transforms(data["transforms"], (*location, "transforms"))
    return structure_record(_converter(), cls, data, location, owner, keymap)


def _user_transforms(value: Any, location: Location) -> tuple[Transform, ...]:
    try:
        return _structure_transforms(value)
    except SpecError as err:
        raise err.at(*location) from None


def _structure_translated(translated: eva.Translated) -> Any:
    return structure_record(
        _converter(),
        translated.record,
        translated.data,
        translated.base,
        translated.owner,
        translated.keymap,
    )


@functools.cache
def _converter() -> cattrs.Converter:
    return make_converter(_structure_transforms)


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
    """No tag key: name a misspelled one if there is one, else list the keys given."""
    keys = list(obj)
    for key in keys:
        if any(key.lower() == tag or closest(key, [tag]) for tag in tags):
            return SpecError(
                (*location, key), f"one of the keys {', '.join(tags)}", key, choices=tags
            )
    return SpecError(
        location, shapes, obj, hint=f"The keys given were: {', '.join(keys) or 'none'}."
    )

"""cattrs: one record from a dict of its fields, with every failure as one located `SpecError`.

Scalars are strict (no ``str(1)`` or ``bool("no")`` coercion). cattrs reports problems as
nested exception groups; they are flattened here into `SpecError`s located in the user's own
keys (which, for eva configs, are not always our field names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import BaseValidationError, ForbiddenExtraKeysError

from .errors import Location, SpecError
from .frozen import FrozenDict
from .precision import PrecisionName, structure_optional_precision, structure_precision
from .records import SPEC_TYPES, TRANSFORM_TYPES, Transform
from .validators import is_int

#: structures a ``transforms:`` value (one transform or a list) into a tuple of records
TransformsHook = Callable[[Any], tuple[Transform, ...]]


def make_converter(structure_transforms: TransformsHook) -> cattrs.Converter:
    """The cattrs converter for every spec and transform record.

    Args:
        structure_transforms: how a ``transforms:`` field is read (passed in, because
            reading a transform dispatches on the shape of the data, which is `structure`'s
            job).
    """
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
    hook(tuple[int, ...], _ints)
    hook(int | tuple[int, ...] | None, _int_or_ints)
    hook(tuple[Transform, ...], structure_transforms)
    # a precision takes Lightning's aliases, the integers 16 and 32 among them
    hook(PrecisionName, structure_precision)
    hook(PrecisionName | None, structure_optional_precision)
    return converter


def structure_record(
    converter: cattrs.Converter,
    cls: type,
    data: Mapping[str, Any],
    location: Location = (),
    owner: str | None = None,
    keymap: Mapping[str, Location] | None = None,
) -> Any:
    """Structure one record of type ``cls`` from a dict of its field names.

    Args:
        converter: from `make_converter`.
        cls: a spec or transform record type.
        data: field name -> value.
        location: where ``data`` sits in the config.
        owner: how messages name the record (``"source 'timm'"``, ``"eva TimmModel"``).
        keymap: field name -> where its value sits relative to ``location``, when that key
            is not the field name (eva argument names).

    Returns:
        The record.

    Raises:
        SpecError: the first problem found, located in the user's own keys; the message
            lists the paths of any other invalid fields.
    """
    keymap = keymap or {}
    try:
        return converter.structure(dict(data), cls)
    except Exception as err:  # cattrs groups, SpecErrors from validators and hooks
        problems = _flatten(err, (), cls, owner or cls.__name__)
        if not problems:
            raise
    located = [_place(problem, location, keymap) for problem in problems]
    first = located[0]
    if len(located) > 1:
        others = ", ".join(p.path for p in located[1:])
        first = first.with_hint(
            f"{first.hint + ' ' if first.hint else ''}(Also invalid: {others}.)"
        )
    raise first from None


def check_keys_are_strings(obj: Mapping[Any, Any], location: Location) -> None:
    """Raise a `SpecError` at the first key of ``obj`` that is not a string."""
    for key in obj:
        if not isinstance(key, str):
            raise SpecError((*location, key), "string keys (field names)", key)


# ---------------------------------------------------------------------------------------------
# cattrs' exception groups -> SpecErrors
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# strict structure hooks: plain data in, field value out, SpecError (located by cattrs) on error
# ---------------------------------------------------------------------------------------------


def _strict(types: type | tuple[type, ...], expected: str) -> Callable[[Any], Any]:
    allowed = types if isinstance(types, tuple) else (types,)

    def structure(value: Any) -> Any:
        # True is an int to Python, not to a config
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise SpecError((), expected, value)
        return value

    return structure


def _mapping(value: Any) -> FrozenDict:
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        raise SpecError((), "a mapping of argument names to values", value)
    check_keys_are_strings(value, ())
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


_ints = _sequence_of(int, "a list of integers")


def _int_or_ints(value: Any) -> Any:
    if value is None or is_int(value):
        return value
    if isinstance(value, (list, tuple)):
        return _ints(value)
    raise SpecError(
        (), "null, an integer n (the last n blocks) or a list of integer block indices", value
    )

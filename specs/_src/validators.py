"""attrs validators for the spec records: small callables raising ``SpecError(field, expected,
got)``, so that a bad value names its field whether it comes from a config or from Python."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .errors import SpecError

#: an attrs validator: ``validate(instance, attribute, value)``, raising on a bad value
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
#: seeds are 32-bit: JAX (without x64) keeps only the low 32 bits of a larger one, so two
#: different seeds would silently give the same weights
SEED_LIMIT = 2**32


def check(expected: str, ok: Callable[[Any], bool], **extra: Any) -> Validator:
    """A validator accepting the values for which ``ok`` is true.

    Args:
        expected: what the field accepts, for the message ("an integer >= 0").
        ok: the predicate.
        extra: passed on to `SpecError` (``choices=...``).
    """

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not ok(value):
            raise SpecError(attribute.name, expected, value, **extra)

    return validate


def is_int(value: Any) -> bool:
    """An int that is not a bool (``True`` is an ``int`` to Python, not to a config)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _non_empty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _dotted(value: Any) -> bool:
    return isinstance(value, str) and _DOTTED.fullmatch(value) is not None


def _or_null(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or ok(value)


non_empty_str = check("a non-empty string", _non_empty_str)
optional_str = check("a non-empty string or null", _or_null(_non_empty_str))
boolean = check("a boolean (true or false)", lambda v: isinstance(v, bool))
integer = check("an integer", is_int)
non_negative_int = check("an integer >= 0", lambda v: is_int(v) and v >= 0)


def is_seed(value: Any) -> bool:
    """An integer in ``[0, 2**32)``: a seed that torch and JAX both take as it is."""
    return is_int(value) and 0 <= value < SEED_LIMIT


seed = check("an integer from 0 to 2**32 - 1 (the seed of random weights)", is_seed)
optional_seed = check(
    "an integer from 0 to 2**32 - 1 (the seed of random weights), or null", _or_null(is_seed)
)
optional_positive_int = check("an integer >= 1 or null", _or_null(lambda v: is_int(v) and v >= 1))
mapping = check("a mapping of argument names to values", lambda v: isinstance(v, Mapping))
import_path = check("an import path such as 'package.module.name'", _dotted)
optional_import_path = check(
    "an import path such as 'package.module.name', or null", _or_null(_dotted)
)
optional_number = check(
    "a number or null",
    _or_null(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
)
name_or_index = check(
    "a field name (string) or an index (integer)",
    lambda v: (isinstance(v, str) and v != "") or is_int(v),
)
indices = check(
    "a non-empty list of integers",
    lambda v: isinstance(v, tuple) and len(v) > 0 and all(is_int(i) for i in v),
)
sha256 = check(
    "a sha256 hex digest (64 hex characters) or null",
    _or_null(lambda v: isinstance(v, str) and _SHA256.fullmatch(v) is not None),
)


def one_of(*choices: Any) -> Validator:
    """A validator accepting exactly ``choices`` (listed in the message)."""
    names = tuple(str(c) for c in choices)
    return check(f"one of {', '.join(names)}", lambda v: v in choices, choices=names)


def out_indices(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """null, an integer n >= 1 (the last n blocks), or a non-empty tuple of block indices."""
    check_out_indices(attribute.name, value)


def check_out_indices(path: str, value: Any) -> None:
    """`out_indices` for a value found at ``path`` (also inside ``model_kwargs``)."""
    if value is None:
        return
    if is_int(value):
        if value < 1:
            raise SpecError(
                path, "an integer >= 1 (the last n blocks) or a list of block indices", value
            )
        return
    if isinstance(value, tuple) and value and all(is_int(v) for v in value):
        return
    raise SpecError(
        path,
        "null, an integer n >= 1 (the last n blocks) or a non-empty list of integer block indices",
        value,
    )


def registry_kwargs(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``out_indices`` inside a registry entry's ``model_kwargs``, checked as the field is."""
    # registry entries take out_indices as eva's do (feature maps instead of an embedding)
    if isinstance(value, Mapping) and "out_indices" in value:
        check_out_indices(f"{attribute.name}.out_indices", value["out_indices"])


def providers(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """null, or a non-empty tuple of ONNX Runtime provider names."""
    if value is None:
        return
    if not (isinstance(value, tuple) and value and all(isinstance(p, str) and p for p in value)):
        raise SpecError(
            attribute.name,
            "null or a non-empty list of ONNX Runtime provider names such as "
            "'CPUExecutionProvider'",
            value,
        )


def shape(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A non-empty tuple of positive integers."""
    if not (isinstance(value, tuple) and value and all(is_int(v) and v >= 1 for v in value)):
        raise SpecError(attribute.name, "a non-empty list of positive integers (a shape)", value)

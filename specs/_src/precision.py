"""The ``precision`` field of every spec record: Lightning's vocabulary, and its aliases.

``32-true`` (the default: float32 weights and compute), ``bf16-mixed`` / ``16-mixed`` (float32
weights, compute in bfloat16 / float16: autocast), ``bf16-true`` / ``16-true`` (weights stored in
the low dtype, so their memory halves). Lightning's own aliases are read as Lightning reads
them (``lightning.fabric.connector``): ``"32"`` / ``32`` -> ``32-true``, ``"16"`` / ``16`` ->
``16-mixed``, ``"bf16"`` -> ``bf16-mixed`` (what eva's multimodal configs write), plus
``"float32"`` / ``"fp32"``, which can only mean ``32-true``. A bare dtype name of a low precision
(``"bfloat16"``, ``"fp16"``, ``"half"``) is refused: timm's ``--amp-dtype`` and TRIDENT read it as
autocast, transformers' ``dtype=`` and timm's ``--model-dtype`` as cast weights, so the reader
must say which. Records hold the canonical name (a converter), so a dumped spec writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType

import attrs

from .errors import SpecError

#: a canonical precision name (the type of the records' ``precision`` field)
PrecisionName = NewType("PrecisionName", str)

#: the settings, in Lightning's names
PRECISIONS: tuple[str, ...] = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true")
DEFAULT_PRECISION = "32-true"
#: what else is read as a setting (Lightning's aliases and the unambiguous float32 names)
ALIASES: dict[Any, str] = {
    "32": "32-true",
    32: "32-true",
    "float32": "32-true",
    "fp32": "32-true",
    "16": "16-mixed",
    16: "16-mixed",
    "bf16": "bf16-mixed",
}
#: dtype names that do not say whether the weights are cast -> the two settings they could mean
_AMBIGUOUS: dict[str, str] = {
    "bfloat16": "bf16",
    "torch.bfloat16": "bf16",
    "float16": "16",
    "fp16": "16",
    "half": "16",
    "torch.float16": "16",
}
EXPECTED = "a precision setting, in Lightning's names"


def canonical_precision(value: Any) -> Any:
    """The canonical name of a precision setting or alias; any other value unchanged (the
    validator then names it). Strings are read without case or surrounding spaces."""
    if type(value) not in (str, int):  # bool, float 16.0: not Lightning's, so not read
        return value
    key = value.strip().lower() if isinstance(value, str) else value
    if key in PRECISIONS:
        return key
    try:
        return ALIASES.get(key, value)
    except TypeError:  # unhashable: the validator names it
        return value


def check_precision(path: Any, value: Any) -> str:
    """``value`` as a canonical precision name, else a `SpecError` at ``path`` listing the
    settings (and, for a bare low dtype name, the two it could mean)."""
    name = canonical_precision(value)
    if isinstance(name, str) and name in PRECISIONS:
        return name
    hint = None
    stem = _AMBIGUOUS.get(value.strip().lower()) if isinstance(value, str) else None
    if stem is not None:
        hint = (
            f"{value!r} does not say whether the weights are cast: {stem}-mixed keeps them "
            f"float32 and computes in the low dtype (autocast), {stem}-true stores them in it "
            "(half the memory). Write one of the two."
        )
    raise SpecError(path, EXPECTED, value, choices=PRECISIONS, hint=hint)


def precision(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator of a ``precision`` field (after `canonical_precision`)."""
    check_precision(attribute.name, value)


def optional_precision(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator of a `RegistrySpec`'s ``precision`` (null: the entry's own)."""
    if value is not None:
        check_precision(attribute.name, value)


def structure_precision(value: Any) -> str:
    """cattrs hook: a config's value (an alias, or Lightning's integer 16 / 32) -> the name."""
    return check_precision((), value)


def structure_optional_precision(value: Any) -> str | None:
    """cattrs hook of a `RegistrySpec`'s ``precision``: null, or as `structure_precision`."""
    return None if value is None else check_precision((), value)


def trainer_precision(trainer: Any, location: tuple[str | int, ...]) -> str:
    """The precision of an eva (Lightning) ``trainer:`` config beside a ``backbone:``, where eva
    sets it (``trainer: {class_path: eva.Trainer, init_args: {precision: bf16}}``).

    A spec file describes one backbone, so the trainer's precision is all it reads: any other
    trainer setting is a `SpecError` rather than something silently dropped.
    """
    if not isinstance(trainer, Mapping):
        raise SpecError(location, "a trainer config mapping (class_path, init_args)", trainer)
    for key in trainer:
        if key not in ("class_path", "init_args"):
            raise SpecError(
                (*location, key), "only 'class_path' and 'init_args' in a trainer config", key
            )
    args = trainer.get("init_args")
    where = (*location, "init_args")
    if not isinstance(args, Mapping) or "precision" not in args:
        raise SpecError(
            where, "a mapping with the trainer's 'precision'", args, hint="Add 'precision: ...'."
        )
    for key in args:
        if key != "precision":
            raise SpecError(
                (*where, key),
                "only 'precision' (a spec file reads the trainer's precision, nothing else)",
                key,
                hint="Remove it: it configures training, not the backbone.",
            )
    return check_precision((*where, "precision"), args["precision"])

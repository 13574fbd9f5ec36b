"""User sources in our YAML format: ``register_source_tag(tag, record_type)``.

A tag registered here joins the built-in `SOURCES` in `source_table`, so `structure`,
`unstructure`, `load`, `dump` and `source_of` treat the user's record like a built-in one
(`SOURCES` itself stays the built-in table). ``adapters.register_source``
calls it; ``specs`` itself stays plain data (no torch, no jax).
"""

from __future__ import annotations

import re

import attrs

from .records import SOURCES, SPEC_TYPES, Spec, tag_of

#: the built-in tags, which a user source can never replace
BUILTIN_TAGS = frozenset(SOURCES)
#: tag -> record type of the sources registered by users
_USER: dict[str, type] = {}
_TAG_RE = re.compile(r"[a-z][a-z0-9_]*")


def register_source_tag(tag: str, record_type: type, *, overwrite: bool = False) -> None:
    """Teach the spec format a new ``source:`` tag.

    Args:
        tag: the tag written in YAML (``source: scale``): lower case letters, digits and ``_``,
            starting with a letter; not a built-in tag (``timm``, ``onnx``, ...).
        record_type: the frozen attrs record the tag stands for.
        overwrite: let ``tag`` name another record type than the one it has now.

    Raises:
        TypeError: ``record_type`` is not an attrs class.
        ValueError: ``tag`` is malformed or built in, it names another record type (without
            ``overwrite``), or ``record_type`` already has another tag.

    Example:
        >>> specs.register_source_tag("scale", ScaleSpec)
        >>> specs.loads("{source: scale, factor: 2.0}")
        ScaleSpec(factor=2.0, transforms=())
    """
    if not isinstance(record_type, type) or not attrs.has(record_type):
        raise TypeError(
            f"register_source_tag: record_type must be an attrs class (@attrs.frozen), got "
            f"{record_type!r} ({type(record_type).__name__})."
        )
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag) or tag in BUILTIN_TAGS:
        raise ValueError(
            f"register_source_tag: tag must be lower case letters, digits and '_' (starting "
            f"with a letter) and not a built-in tag ({', '.join(sorted(BUILTIN_TAGS))}), got "
            f"{tag!r}. Pick another name."
        )
    current = _USER.get(tag)
    if current is not None and current is not record_type and not overwrite:
        raise ValueError(
            f"register_source_tag: tag {tag!r} already names {current.__qualname__}. Pass "
            "overwrite=True to replace it, or pick another tag."
        )
    other = [t for t, cls in _USER.items() if cls is record_type and t != tag]
    if other:
        raise ValueError(
            f"register_source_tag: {record_type.__qualname__} already has the tag "
            f"{other[0]!r}; a record type has one tag. Unregister it first."
        )
    attrs.resolve_types(record_type)
    _USER[tag] = record_type


def unregister_source_tag(tag: str) -> None:
    """Forget a tag added with `register_source_tag` (no-op when absent).

    Raises:
        ValueError: ``tag`` is built in.
    """
    if tag in BUILTIN_TAGS:
        raise ValueError(f"unregister_source_tag: {tag!r} is a built-in tag; it stays.")
    _USER.pop(tag, None)


def source_table() -> dict[str, type]:
    """Every ``source:`` tag -> its record type: the built-in ones, then the registered ones."""
    return {**SOURCES, **_USER}


def spec_types() -> tuple[type, ...]:
    """Every spec record type: the built-in ones, then the registered ones."""
    return (*SPEC_TYPES, *_USER.values())


def source_of(spec: Spec) -> str:
    """The ``source:`` tag of a spec record (built in or registered).

    Args:
        spec: a spec record.

    Returns:
        Its tag in our format, e.g. ``"timm"`` for a `TimmSpec`.

    Raises:
        SpecError: ``spec`` is not a spec record (lists the tags).
    """
    return tag_of(spec, source_table(), "source", "a spec record")

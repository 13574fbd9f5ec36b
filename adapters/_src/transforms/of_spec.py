"""Transform records (``spec.transforms``) -> the transforms their factories make."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from specs import (
    AsDiscrete,
    ClsToken,
    HiddenState,
    L2Normalize,
    MeanPatch,
    PatchGrid,
    Select,
)
from specs import Transform as TransformRecord

from .factories import (
    Transform,
    as_discrete,
    chain,
    cls_token,
    hidden_state,
    l2_normalize,
    mean_patch,
    patch_grid,
    select,
)

#: transform record type -> its factory; a record's fields are its factory's argument names
_FROM_RECORD: dict[type, Callable[..., Transform]] = {
    ClsToken: cls_token,
    PatchGrid: patch_grid,
    MeanPatch: mean_patch,
    HiddenState: hidden_state,
    Select: select,
    AsDiscrete: as_discrete,
    L2Normalize: l2_normalize,
}


def from_spec(record: TransformRecord) -> Transform:
    """The transform a spec record names (``specs.ClsToken(...)`` -> ``cls_token(...)``).

    Args:
        record: a transform record (``specs.ClsToken``, ``specs.PatchGrid``, ...).

    Returns:
        The transform, as its factory makes it.

    Raises:
        TypeError: ``record`` is not a transform record (lists the valid record types).
    """
    make = _FROM_RECORD.get(type(record))
    if make is None:
        valid = ", ".join(f"specs.{t.__name__}" for t in _FROM_RECORD)
        raise TypeError(
            f"from_spec: expected a transform record ({valid}), got {record!r} "
            f"({type(record).__name__})."
        )
    return make(**attrs.asdict(record, recurse=False))


def from_specs(records: Iterable[TransformRecord]) -> Transform:
    """``chain`` of the transforms the records name, in order (``spec.transforms``).

    Args:
        records: transform records.

    Returns:
        One transform applying them left to right (the identity for none).

    Raises:
        TypeError: an item is not a transform record (names its position).
    """
    fns = []
    for i, record in enumerate(records):
        try:
            fns.append(from_spec(record))
        except TypeError as err:
            raise TypeError(f"transforms[{i}]: {err}") from err
    return chain(*fns)


def output_transform(spec: Any) -> Transform | None:
    """The spec's ``transforms`` composed into one function (None when there are none)."""
    records = tuple(getattr(spec, "transforms", ()) or ())
    return from_specs(records) if records else None

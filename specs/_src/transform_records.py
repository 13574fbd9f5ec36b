"""Transform records: output transforms as data (eva's ``ExtractCLSFeatures``,
``ExtractPatchFeatures``, ``AsDiscrete``, ...), applied in order by an adapter's ``forward``.

Plain data (no torch, no jax), frozen and validated at construction, like the source records
(``records.py``) that hold them in their ``transforms`` field.
"""

from __future__ import annotations

import attrs

from . import validators as v


def _as_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen
class ClsToken:
    """(B, T, D) -> (B, D): the CLS token; with ``include_patch_mean``, (B, 2D) with the
    mean of the patch tokens (CLS and register tokens skipped) concatenated.
    Mirrors eva's ``ExtractCLSFeatures(cls_index, num_register_tokens, include_patch_tokens)``."""

    index: int = attrs.field(default=0, validator=v.integer)
    num_register_tokens: int = attrs.field(default=0, validator=v.non_negative_int)
    include_patch_mean: bool = attrs.field(default=False, validator=v.boolean)


@attrs.frozen
class PatchGrid:
    """(B, T, D) -> [(B, D, h, w)]: patch tokens as a square grid.
    Mirrors eva's ``ExtractPatchFeatures(has_cls_token, num_reg_tokens, ignore_remaining_dims)``."""

    has_cls_token: bool = attrs.field(default=True, validator=v.boolean)
    num_register_tokens: int = attrs.field(default=0, validator=v.non_negative_int)
    ignore_remaining: bool = attrs.field(default=False, validator=v.boolean)


@attrs.frozen
class MeanPatch:
    """(B, T, D) -> (B, D): mean of the patch tokens (CLS and register tokens skipped)."""

    has_cls_token: bool = attrs.field(default=True, validator=v.boolean)
    num_register_tokens: int = attrs.field(default=0, validator=v.non_negative_int)


@attrs.frozen
class HiddenState:
    """Pick a field of a model output object (``last_hidden_state``) or an element by index."""

    name: str | int = attrs.field(default="last_hidden_state", validator=v.name_or_index)


@attrs.frozen
class Select:
    """Pick feature maps by index from a list of them (e.g. the output of ``out_indices``)."""

    indices: tuple[int, ...] = attrs.field(converter=_as_tuple, validator=v.indices)


@attrs.frozen
class AsDiscrete:
    """Logits -> discrete labels, as eva's ``AsDiscrete(argmax, to_onehot, threshold, dim,
    keepdim)``."""

    argmax: bool = attrs.field(default=False, validator=v.boolean)
    to_onehot: int | None = attrs.field(default=None, validator=v.optional_positive_int)
    threshold: float | None = attrs.field(default=None, validator=v.optional_number)
    dim: int = attrs.field(default=1, validator=v.integer)
    keepdim: bool = attrs.field(default=True, validator=v.boolean)


@attrs.frozen
class L2Normalize:
    """Divide by the L2 norm along ``axis``."""

    axis: int = attrs.field(default=-1, validator=v.integer)


TRANSFORM_TYPES = (ClsToken, PatchGrid, MeanPatch, HiddenState, Select, AsDiscrete, L2Normalize)
Transform = ClsToken | PatchGrid | MeanPatch | HiddenState | Select | AsDiscrete | L2Normalize

#: tag written in our YAML format (``transform: cls_token``) -> record type
TRANSFORMS: dict[str, type] = {
    "cls_token": ClsToken,
    "patch_grid": PatchGrid,
    "mean_patch": MeanPatch,
    "hidden_state": HiddenState,
    "select": Select,
    "as_discrete": AsDiscrete,
    "l2_normalize": L2Normalize,
}

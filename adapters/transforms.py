"""Output transforms: factories returning plain functions of one model output, and `chain`.

The implementation lives in ``adapters/_src/transforms/``; this module only re-exports.
"""

from adapters._src.transforms.factories import (
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
from adapters._src.transforms.of_spec import from_spec, from_specs

__all__ = [
    "Transform",
    "as_discrete",
    "chain",
    "cls_token",
    "from_spec",
    "from_specs",
    "hidden_state",
    "l2_normalize",
    "mean_patch",
    "patch_grid",
    "select",
]

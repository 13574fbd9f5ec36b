"""Downstream heads in JAX/Flax: linear and MLP probes trained with optax.

The implementation lives in ``adapters/_src/heads.py``; this module only re-exports.
"""

from adapters._src.heads import (
    HEADS,
    Fitted,
    LinearHead,
    MLPHead,
    fit,
    make_head,
    make_train_step,
    predict,
)

__all__ = [
    "HEADS",
    "Fitted",
    "LinearHead",
    "MLPHead",
    "fit",
    "make_head",
    "make_train_step",
    "predict",
]

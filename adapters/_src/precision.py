"""Precision: Lightning's settings (``specs.PRECISIONS``) as dtypes, and ``build``'s override.

Every spec record has a ``precision`` field (``specs/_src/precision.py``); ``build(spec,
precision=...)`` replaces it and ``adapter.spec.precision`` records the one built. What each
setting means, on every runtime:

- ``32-true``: float32 weights and compute (the default; eva's numbers);
- ``bf16-mixed`` / ``16-mixed``: float32 weights, compute in bfloat16 / float16 (torch's
  autocast: matmuls and convolutions in the low dtype, reductions and norms kept float32);
- ``bf16-true`` / ``16-true``: weights stored in the low dtype (their memory halves), inputs
  cast to it, every op computing in it (matmuls and convolutions accumulating in float32).

Floating outputs come back in the setting's compute dtype (`Policy.compute`) on every runtime,
whatever the last op did (autocast leaves a final LayerNorm's output float32 and a final Linear's
bfloat16): the dtype of a backbone's features depends on its precision, not its architecture.
Cast them (``y.float()``, ``y.astype(jnp.float32)``) where float32 is needed.

Imports no framework: `build` is imported by ``--help``.
"""

from __future__ import annotations

from typing import Any

import attrs

import specs
from specs.internal import DEFAULT_PRECISION, closest
from specs.internal import check_precision as _check_spec_precision

from .errors import BuildError


@attrs.frozen
class Policy:
    """What a precision setting does.

    Attributes:
        name: the setting (``"bf16-mixed"``).
        compute: the dtype the backbone computes in and returns (``"bfloat16"``).
        storage: the dtype its weights are stored in (``"float32"`` for ``-mixed``).
    """

    name: str
    compute: str
    storage: str

    @property
    def mixed(self) -> bool:
        """Whether the weights stay float32 while the compute is low (autocast)."""
        return self.storage != self.compute

    @property
    def low(self) -> bool:
        """Whether anything runs below float32."""
        return self.compute != "float32"


POLICIES: dict[str, Policy] = {
    "32-true": Policy("32-true", "float32", "float32"),
    "bf16-mixed": Policy("bf16-mixed", "bfloat16", "float32"),
    "16-mixed": Policy("16-mixed", "float16", "float32"),
    "bf16-true": Policy("bf16-true", "bfloat16", "bfloat16"),
    "16-true": Policy("16-true", "float16", "float16"),
}

#: the first-build parity check of a runtime against torch at the same precision, as
#: ``(atol, rtol)`` with ``rtol`` relative to the largest magnitude of torch's output. float32:
#: the lowering's and the export's own tolerance. Low precisions: two correct implementations
#: round their intermediates at different places (XLA fuses elementwise ops and rounds once,
#: torch rounds after each kernel; ONNX Runtime computes float16 ops it has no kernel for in
#: float32), so over a whole network they differ by a few units of the dtype's roundoff at the
#: output's scale, growing with depth. The bounds are torch.testing's rtol for the dtype
#: (bfloat16 1.6e-2, float16 1e-3) raised to leave room for deeper networks than those
#: measured (README "Precision"): bfloat16 2**-5, float16 2**-7, relative to the largest
#: output; ``atol`` only keeps an all-zero output from failing.
PARITY_TOLERANCE: dict[str, tuple[float, float]] = {
    "float32": (1e-4, 1e-4),
    "bfloat16": (1e-5, 2.0**-5),
    "float16": (1e-5, 2.0**-7),
}


def policy(precision: str) -> Policy:
    """The `Policy` of a canonical setting name."""
    return POLICIES[precision]


def parity_tolerance(precision: str) -> tuple[float, float]:
    """``(atol, rtol)`` of a runtime's first-build check at ``precision`` (see
    `PARITY_TOLERANCE`)."""
    return PARITY_TOLERANCE[policy(precision).compute]


def check_precision(precision: Any) -> str | None:
    """``build``'s ``precision`` argument as a canonical setting (None stays None: the spec's).

    Raises:
        BuildError: not a setting nor one of Lightning's aliases (lists the settings).
    """
    if precision is None:
        return None
    try:
        return _check_spec_precision("precision", precision)
    except specs.SpecError as err:
        close = closest(precision, specs.PRECISIONS) if isinstance(precision, str) else []
        fix = err.hint or (
            f"Did you mean {' or '.join(repr(c) for c in close)}? Pass that"
            if close
            else "Pass precision='bf16-mixed' (autocast, float32 weights) or 'bf16-true' "
            "(bfloat16 weights, half the memory)"
        )
        raise BuildError(
            "precision",
            "not a precision setting",
            expected=f"one of {', '.join(specs.PRECISIONS)} (Lightning's names; '32', '16' and "
            "'bf16' are read as Lightning reads them), or None (the spec's own)",
            got=precision,
            fix=fix,
        ) from err


def has_precision_field(spec: Any) -> bool:
    """Whether ``spec`` is an attrs record with a ``precision`` field (every built-in one)."""
    return attrs.has(type(spec)) and any(f.name == "precision" for f in attrs.fields(type(spec)))


def with_precision(spec: Any, precision: str | None) -> Any:
    """``spec`` with its ``precision`` set to ``precision`` (the spec itself when None), so that
    ``adapter.spec`` says what was built.

    Raises:
        BuildError: a low precision for a record without a ``precision`` field (a user's
            source record), which nothing could apply.
    """
    if precision is None or getattr(spec, "precision", None) == precision:
        return spec
    if not has_precision_field(spec):
        if precision == DEFAULT_PRECISION:
            return spec
        raise BuildError(
            "precision",
            f"{type(spec).__name__} has no precision field, so its source cannot be told to "
            f"run at {precision}",
            fix=f"Add a field 'precision: str = \"{DEFAULT_PRECISION}\"' to the record and "
            "honour it in the source's builder, or build it at the default precision",
        )
    return attrs.evolve(spec, precision=precision)


def precision_of(spec: Any) -> str:
    """The setting a build of ``spec`` runs at: its ``precision`` field when it holds one,
    else ``32-true``."""
    own = getattr(spec, "precision", None) if has_precision_field(spec) else None
    return own if isinstance(own, str) and own in POLICIES else DEFAULT_PRECISION

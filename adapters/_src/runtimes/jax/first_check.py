"""The JAX runtime's first-build check of a lowered torch forward: the lowering served with the
XLA options that pass the check against torch and measure faster (`xla_options`), else XLA's
defaults, which must pass it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import jax

from ...adapter import Adapter
from ...errors import ParityError
from ..parity import ParityReport, parity
from .device import exact_float32
from .served import Flat
from .xla_options import compiler_options, first_passing
from .xla_options import jit as xla_jit

#: what to do instead, in every refusal of the JAX runtime
ALTERNATIVES = (
    "Use runtime='torch' (the module as loaded), or keep it in torch and call it from JAX "
    "with interop.jax_function(adapter) (a host callback: differentiable, no XLA fusion)"
)


def check_parity(report: ParityReport, adapter: Adapter, atol: float, rtol: float) -> ParityReport:
    """The first-build check's ``report`` (``info["parity"]``); raises past the tolerance."""
    if not report.ok(atol, rtol):
        raise ParityError(
            f"lower_to_jax: the lowered {type(adapter.module).__name__} does not match torch "
            f"within atol={atol}, rtol={rtol}: {report}. Nothing was cached. Fix: "
            f"{ALTERNATIVES}; and report the model (a lowering bug)."
        )
    return report


def checked(
    adapter: Adapter,
    wrap: Callable[..., Adapter],
    flat: Flat,
    info: dict[str, Any],
    check: Any,
    platform: str,
    tol: tuple[float, float],
) -> Adapter:
    """The lowered forward served with the first XLA options (`xla_options`) that pass the
    check against torch and measure faster, else XLA's defaults, which must pass it (a
    `ParityError` otherwise); ``info`` gains ``xla_options`` and ``parity``."""

    def serve(options: dict[str, str]) -> Adapter:
        return wrap(run=xla_jit(flat, options), info={**info, "xla_options": options})

    with exact_float32(platform):
        served, options, report = first_passing(
            compiler_options(platform),
            serve,
            lambda s: parity(s, adapter, check),
            lambda r: r.ok(*tol),
            lambda s: jax.block_until_ready(s.forward(s.params, check)),
        )
        checked = attrs.asdict(check_parity(report, adapter, *tol))
    return attrs.evolve(served, info={**served.info, "xla_options": options, "parity": checked})

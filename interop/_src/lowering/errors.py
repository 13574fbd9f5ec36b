"""``LoweringError`` and its messages: what cannot be lowered, where, and how to add an op.

What to do instead of lowering (run in torch, call torch from JAX) is not said here: that
advice belongs to the layer that chose the runtime (``adapters``' ``runtime="jax"``), which
says it once.
"""

from __future__ import annotations

from collections import Counter

#: said after missing ops: how the table grows
ADD_AN_OP = (
    "An op is added as one small JAX function decorated with @op('<op name>'), in its family "
    "module under interop/_src/lowering/ops/ (or, from your own code, with "
    "interop.lowering.op)."
)


class LoweringError(ValueError):
    """A torch module cannot be lowered to JAX (not exportable, or ops outside the table).

    A ``ValueError``: the module given is a value this function cannot take, as
    ``adapters.BuildError`` (a ``ValueError`` too) says of a spec; callers that catch
    ``ValueError`` for bad input catch this. It is raised at lowering time, never at call time.
    """


def mutates_state(module_name: str, mutated: list[str]) -> str:
    """The sentence that leads every message about a forward that writes its own state."""
    return (
        f"cannot lower {module_name} to JAX: its forward mutates state "
        f"({', '.join(mutated)}), which a pure JAX function cannot do; remove the in-place "
        "update from forward, or put the module in a mode that does not make it (eval mode, "
        "no caches)."
    )


def missing_ops_message(
    module_name: str, missing: dict[str, Counter], mutated: list[str | None]
) -> str:
    """One message: the state the forward mutates (first), then each missing op with the
    submodules (and counts) using it, then how to add an op."""
    lines = [
        mutates_state(module_name, [str(m) for m in mutated])
        if mutated
        else f"cannot lower {module_name} to JAX:"
    ]
    if missing:
        lines.append(f"{len(missing)} op(s) are not in the lowering table:")
        for name in sorted(missing):
            where = ", ".join(f"{w} x{n}" if n > 1 else w for w, n in missing[name].most_common())
            lines.append(f"  - {name}, used in {where}")
        lines.append(ADD_AN_OP)
    return "\n".join(lines)

"""``LoweringError`` and its message: every missing op, where it comes from, what to do instead."""

from __future__ import annotations

from collections import Counter

_ALTERNATIVES = (
    "Alternatives: run the module in torch (adapters.build(spec, runtime='torch')), or keep "
    "it in torch and call it from JAX with interop.jax_function(adapter) (host callback, "
    "differentiable, no XLA fusion); or add the missing ops to "
    "interop/_src/lowering/ops.py (one small function each)."
)


class LoweringError(ValueError):
    """A torch module cannot be lowered to JAX (not exportable, or ops outside the table).

    A ``ValueError``: the module given is a value this function cannot take, as
    ``adapters.BuildError`` (a ``ValueError`` too) says of a spec; callers that catch
    ``ValueError`` for bad input catch this. It is raised at lowering time, never at call time.
    """


def missing_ops_message(
    module_name: str, missing: dict[str, Counter], mutated: list[str | None]
) -> str:
    """One message listing each missing op with the submodules (and counts) using it."""
    lines = [f"cannot lower {module_name} to JAX:"]
    if missing:
        lines.append(f"{len(missing)} op(s) are not in the lowering table:")
        for name in sorted(missing):
            where = ", ".join(f"{w} x{n}" if n > 1 else w for w, n in missing[name].most_common())
            lines.append(f"  - {name}, used in {where}")
    if mutated:
        lines.append(
            f"its forward mutates state ({', '.join(str(m) for m in mutated)}), which a pure "
            "JAX function cannot do; put the module in a mode that does not (eval mode, no caches)."
        )
    lines.append(_ALTERNATIVES)
    return "\n".join(lines)

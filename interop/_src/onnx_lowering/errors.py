"""``OnnxLoweringError`` and the one message listing everything a graph needs that the table
lacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: said after missing ops: how the table grows
ADD_AN_OP = (
    "An op is added as one JAX function decorated with @onnx_op('<OpType>') in its family "
    "module under interop/_src/onnx_lowering/ops/."
)
#: how many node names a message shows per op type
SHOW_NODES = 5


class OnnxLoweringError(ValueError):
    """An ONNX graph cannot be lowered to JAX (unreadable, too old an opset, ops outside the
    table, or a shape computed from data). Raised at lowering time, never at call time."""


def problems_message(
    what: str, missing: Mapping[str, Sequence[str]], refused: Sequence[str]
) -> str:
    """Every missing op type with the nodes using it, then every refused node."""
    lines = [f"cannot lower {what} to JAX:"]
    if missing:
        lines.append(f"{len(missing)} op type(s) outside the table:")
        for op_type in sorted(missing):
            nodes = list(missing[op_type])
            shown = ", ".join(repr(n) for n in nodes[:SHOW_NODES])
            more = f" and {len(nodes) - SHOW_NODES} more" if len(nodes) > SHOW_NODES else ""
            lines.append(f"  {op_type} ({len(nodes)} node(s): {shown}{more})")
    if refused:
        lines.append(f"{len(refused)} node(s) in a use the table refuses:")
        lines.extend(f"  {r}" for r in refused)
    lines.append(ADD_AN_OP)
    return "\n".join(lines)

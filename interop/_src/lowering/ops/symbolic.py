"""What a graph computes on sizes rather than tensors: ``sym_size`` / ``sym_numel``, the
runtime asserts (no-ops here), and Python's arithmetic on (symbolic) ints, as the builtins."""

from __future__ import annotations

import math
import operator

from interop._src.lowering.ops.registry import op


@op("aten.sym_size.int")
def sym_size(x, dim):
    return x.shape[dim]


@op("aten.sym_numel.default")
def sym_numel(x):
    return math.prod(x.shape)


@op(
    "aten._assert_scalar.default",
    "aten.sym_constrain_range_for_size.default",
    "aten._assert_tensor_metadata.default",
)
def no_op(*args, **kwargs):
    return None


for _name in (
    "getitem",
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "neg",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and_",
    "or_",
):
    op(f"operator.{_name}")(getattr(operator, _name))
op("torch.sym_int")(int)
op("torch.sym_float")(float)
op("torch.sym_max")(max)
op("torch.sym_min")(min)
op("math.ceil")(math.ceil)
op("math.floor")(math.floor)
op("math.sqrt")(math.sqrt)

"""Attention fusion for an exported model: MatMul / Softmax / MatMul rewritten into ONNX
Runtime's one-kernel ``com.microsoft.MultiHeadAttention`` (`fuse_attention`)."""

from __future__ import annotations

import os
from pathlib import Path

from specs.internal import atomic_write


def fuse_attention(path: str | os.PathLike[str]) -> dict[str, int]:
    """Rewrite an exported model in place so ONNX Runtime runs attention as one kernel.

    The dynamo exporter writes ``scaled_dot_product_attention`` as MatMul / Softmax / MatMul
    with per-head Transposes around it; onnxscript's ORT fusions turn it into
    ``com.microsoft.MultiHeadAttention`` (shapes simplified first, so the pattern matches
    under a dynamic batch). Models without attention are left untouched.

    Why this fusion and not ORT's others: docs/design/runtimes.md.

    Args:
        path: an ``.onnx`` file, rewritten atomically when a fusion applies.

    Returns:
        ``{"sdpa": n, "multi_head_attention": n}``: how many attention blocks were fused.
    """
    import onnx_ir as ir  # lazy: onnxscript's rewriter is only needed on a cache miss
    from onnxscript.optimizer import optimize
    from onnxscript.rewriter.ort_fusions import shape_optimization
    from onnxscript.rewriter.ort_fusions.sdpa import fuse_sdpa
    from onnxscript.rewriter.ort_fusions.sdpa_via_mha import replace_sdpa_by_mha

    path = Path(path)
    model = ir.load(path)
    ir.passes.common.ShapeInferencePass()(model)
    optimize(model)
    shape_optimization.rules.apply_to_model(model)
    optimize(model)
    counts = {"sdpa": fuse_sdpa(model, apply_shape_inference=True), "multi_head_attention": 0}
    if counts["sdpa"]:
        counts["multi_head_attention"] = replace_sdpa_by_mha(model)
    if not counts["multi_head_attention"]:
        return counts
    optimize(model)  # inlines any SDPA function left unfused
    external = (path.parent / f"{path.name}.data").is_file()  # as export_adapter writes it
    with atomic_write(path) as staged:
        ir.save(model, staged, external_data=f"{path.name}.data" if external else None)
    return counts

"""The op table, complete: the registry and every family module that fills it.

Import ``TABLE`` / ``OPS`` / ``op`` from here (not from ``registry``) wherever the whole table
is needed: importing this package imports every family. One module per family; a new op is
one ``@op``-decorated function in its family's module (see ``../README.md``).
"""

from interop._src.lowering.ops import (  # noqa: F401  (imported to register their ops)
    activations,
    arithmetic,
    attention,
    bessel,
    bilinear,
    comparison,
    complex_numbers,
    conv,
    creation,
    distances,
    fft,
    histograms,
    indexing,
    linalg,
    linalg_decompositions,
    linalg_ldl,
    linalg_solve,
    losses,
    norms,
    polynomials,
    pooling,
    pooling_indices,
    random,
    reductions,
    resample,
    sampling,
    scans,
    scatter,
    segments,
    shapes_from_data,
    sorting,
    special,
    symbolic,
    transcendental,
    views,
)
from interop._src.lowering.ops.registry import (
    KEEP,
    OPS,
    RANDOM,
    RECORDED,
    TABLE,
    draws,
    op,
    op_name,
    refusal,
)

__all__ = ["KEEP", "OPS", "RANDOM", "RECORDED", "TABLE", "draws", "op", "op_name", "refusal"]

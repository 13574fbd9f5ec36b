"""The dtypes ``embed --out-dtype`` stores embeddings in, for the file and the Ray shards."""

from __future__ import annotations

import numpy as np

from .errors import CliError

#: the dtypes ``embed --out-dtype`` stores embeddings in
OUT_DTYPES = ("float32", "float16")


def check_storable(values: np.ndarray, dtype: str) -> None:
    """Raise `CliError` when ``values`` stored in ``dtype`` would not read back (float16: a
    value beyond its largest, 65504, which would be stored as inf)."""
    if dtype == "float16" and values.size and float(np.abs(values).max()) > 65504.0:
        raise CliError(
            f"--out-dtype float16: embeddings reach {float(np.abs(values).max()):.4g}, beyond "
            "float16's largest value 65504; store them as float32 (drop --out-dtype)"
        )

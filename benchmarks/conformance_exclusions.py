"""The one reviewed list of ``op_db`` entries the conformance table does not compare, and why.

Each key is an entry's table key (``"name"`` or ``"name[variant]"``, see
``benchmarks._opinfo.entry_key``). An ``Exclusion`` names its category (one of
``CATEGORIES``), a sentence saying why no comparison with torch eager would mean anything, and
optionally the dtypes or the sample indices it is limited to (all of them when None).

What is not here is measured: an entry torch.export cannot capture is recorded as
``not_capturable`` by the sweep itself, and an op whose output shape depends on the data is
expected to be refused with a clear ``LoweringError`` (issue 22, item 4), so it is measured
too. Adding a line here needs a reason a reviewer can check in torch's own definition of the
op; "the lowering gets it wrong" is never one.
"""

from __future__ import annotations

from typing import NamedTuple


class Exclusion(NamedTuple):
    category: str
    reason: str
    dtypes: tuple[str, ...] | None = None
    samples: tuple[int, ...] | None = None


CATEGORIES = {
    "nondeterministic": "draws random numbers: two torch runs differ (train-mode randomness, "
    "issue 22 item 5, is tested against distributions instead)",
    "uninitialised": "returns uninitialised memory: no value is defined to compare",
    "sparse": "takes or returns a sparse layout, which neither torch.export nor JAX arrays carry",
    "storage": "reads memory outside the tensor it is given (a view's base storage), which a "
    "function of array values cannot see",
    "python_value": "returns a Python number or bool, not a tensor: torch.export specialises it "
    "into the graph as a constant",
    "unspecified_order": "the sample has equal values, and which of them comes first (or which "
    "one's index is returned) is left open by torch's documentation; its CPU kernel's choice "
    "(std::sort, std::nth_element) is no contract. The lowering's values match and its "
    "indices address equal values (tests/interop/ops/test_sorting.py checks both)",
}

_RANDOM = "draws from torch's global generator"
_EMPTY = "returns a tensor of uninitialised memory"
_TIES = "8000 values rounded to runs of equal values"
_LOW = ("bfloat16", "float16")

EXCLUDED: dict[str, Exclusion] = {
    # sampling ops and their in-place forms
    "bernoulli": Exclusion("nondeterministic", f"{_RANDOM} (Bernoulli)."),
    "cauchy": Exclusion("nondeterministic", f"{_RANDOM} (Cauchy)."),
    "exponential": Exclusion("nondeterministic", f"{_RANDOM} (exponential)."),
    "geometric": Exclusion("nondeterministic", f"{_RANDOM} (geometric)."),
    "log_normal": Exclusion("nondeterministic", f"{_RANDOM} (log-normal)."),
    "multinomial": Exclusion("nondeterministic", f"{_RANDOM} (multinomial)."),
    "normal": Exclusion("nondeterministic", f"{_RANDOM} (normal)."),
    "normal[in_place]": Exclusion("nondeterministic", f"{_RANDOM} (normal_, in place)."),
    "normal[number_mean]": Exclusion("nondeterministic", f"{_RANDOM} (normal, scalar mean)."),
    "uniform": Exclusion("nondeterministic", f"{_RANDOM} (uniform_, in place)."),
    "rand_like": Exclusion("nondeterministic", f"{_RANDOM} (uniform)."),
    "randn": Exclusion("nondeterministic", f"{_RANDOM} (normal)."),
    "randn_like": Exclusion("nondeterministic", f"{_RANDOM} (normal)."),
    "randint": Exclusion("nondeterministic", f"{_RANDOM} (integers)."),
    "randint_like": Exclusion("nondeterministic", f"{_RANDOM} (integers)."),
    # randomised algorithms and layers sampling masks or slopes
    "svd_lowrank": Exclusion("nondeterministic", "projects on a random Gaussian sketch."),
    "pca_lowrank": Exclusion("nondeterministic", "projects on a random Gaussian sketch."),
    "nn.functional.dropout": Exclusion("nondeterministic", "its samples train (a random mask)."),
    "nn.functional.dropout2d": Exclusion(
        "nondeterministic", "its samples train (random channels)."
    ),
    "nn.functional.dropout3d": Exclusion(
        "nondeterministic", "its samples train (random channels)."
    ),
    "nn.functional.alpha_dropout": Exclusion(
        "nondeterministic", "its samples train (a random mask)."
    ),
    "nn.functional.feature_alpha_dropout[with_train]": Exclusion(
        "nondeterministic", "training=True: a random channel mask."
    ),
    "nn.functional.rrelu": Exclusion(
        "nondeterministic", "its samples pass training=True: each negative slope is drawn."
    ),
    "nn.functional.fractional_max_pool2d": Exclusion(
        "nondeterministic", "pooling regions are drawn at random unless _random_samples is given."
    ),
    "nn.functional.fractional_max_pool3d": Exclusion(
        "nondeterministic", "pooling regions are drawn at random unless _random_samples is given."
    ),
    "nn.functional.multi_head_attention_forward": Exclusion(
        "nondeterministic", "sample 1 passes training=True with dropout_p=0.5.", samples=(1,)
    ),
    # uninitialised memory
    "empty": Exclusion("uninitialised", f"{_EMPTY}."),
    "empty_like": Exclusion("uninitialised", f"{_EMPTY}."),
    "empty_permuted": Exclusion("uninitialised", f"{_EMPTY}."),
    "empty_strided": Exclusion("uninitialised", f"{_EMPTY}."),
    "new_empty": Exclusion("uninitialised", f"{_EMPTY}."),
    "new_empty_strided": Exclusion("uninitialised", f"{_EMPTY}."),
    "resize_": Exclusion("uninitialised", "grows a tensor in place; the new elements are unset."),
    "resize_as_": Exclusion(
        "uninitialised", "grows a tensor in place; the new elements are unset."
    ),
    # sparse layouts
    "to_sparse": Exclusion("sparse", "returns a sparse COO tensor."),
    "sparse.sampled_addmm": Exclusion("sparse", "takes a sparse CSR tensor."),
    "sparse.mm[reduce]": Exclusion("sparse", "takes a sparse CSR tensor."),
    # --- sorting and selection (issue 22, o-index): low-precision samples with ties ---
    "sort": Exclusion("unspecified_order", _TIES + " (sort without stable=True).", _LOW, (0,)),
    "argsort": Exclusion(
        "unspecified_order", _TIES + " (argsort without stable=True).", _LOW, (0,)
    ),
    "topk": Exclusion(
        "unspecified_order",
        "rows with equal values in bfloat16 (topk's order of ties).",
        ("bfloat16",),
        (1, 2, 3, 4, 5, 6),
    ),
    "mode": Exclusion(
        "unspecified_order", "3000 values with many repeats: which index of the mode.", _LOW, (6,)
    ),
    # --- end of o-index's block ---
    # views addressing their base's storage
    "as_strided[partial_views]": Exclusion(
        "storage", "its inputs are views; as_strided addresses the base storage past the view."
    ),
}


def lookup(key: str, dtype: str) -> Exclusion | None:
    """The exclusion of entry ``key`` in ``dtype``, or None when it is compared."""
    found = EXCLUDED.get(key)
    if found is None or (found.dtypes is not None and dtype not in found.dtypes):
        return None
    return found


def sample_skips() -> dict[tuple[str, str], tuple[int, ...]]:
    """``(entry key, dtype) -> sample indices`` excluded there: each exclusion limited to some
    samples, in its dtypes (every dtype when it names none)."""
    return {
        (key, dtype): found.samples
        for key, found in EXCLUDED.items()
        if found.samples is not None
        for dtype in found.dtypes or ("float32", "bfloat16", "float16")
    }

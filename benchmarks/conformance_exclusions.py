"""The one reviewed list of ``op_db`` entries the conformance table does not compare
elementwise, and why: those it does not compare at all (``EXCLUDED``) and the random ones it
compares by distribution (``STATISTICAL``).

Each key is an entry's table key (``"name"`` or ``"name[variant]"``, see
``benchmarks._opinfo.entry_key``). An ``Exclusion`` names its category (one of
``CATEGORIES``), a sentence saying why no comparison with torch eager would mean anything, and
optionally the dtypes or the sample indices it is limited to (all of them when None).

What is not here is measured: an entry torch.export cannot capture is recorded as
``not_capturable`` by the sweep itself, and an op whose output shape depends on the data is
expected to be refused with a clear ``LoweringError`` (issue 22, item 4), so it is measured
too. Adding a line here needs a reason a reviewer can check in torch's own definition of the
op; "the lowering gets it wrong" is never one.

An entry that draws random numbers cannot match torch elementwise (the lowering draws from a
``jax.random`` key, torch from its generator), but its distribution can be compared: a
``STATISTICAL`` entry is lowered in train mode (``interop.lower(..., train=True)``) and many
draws of it are compared with as many of torch's, by shape, dtype, support and moments
(``benchmarks/_opinfo_random.py`` says how, and how the bounds follow from the number of
draws). Only where even that means nothing is a random entry ``EXCLUDED`` as nondeterministic.
"""

from __future__ import annotations

from typing import NamedTuple


class Exclusion(NamedTuple):
    category: str
    reason: str
    dtypes: tuple[str, ...] | None = None
    samples: tuple[int, ...] | None = None


CATEGORIES = {
    "nondeterministic": "draws random numbers that no comparison of distributions captures "
    "(the samplers and random layers are compared by distribution: STATISTICAL)",
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

_EMPTY = "returns a tensor of uninitialised memory"
_TIES = "8000 values rounded to runs of equal values"
_LOW = ("bfloat16", "float16")

EXCLUDED: dict[str, Exclusion] = {
    # randomised algorithms and layers whose randomness no distribution check captures (the
    # samplers and random layers are compared by distribution instead: STATISTICAL below)
    "svd_lowrank": Exclusion(
        "nondeterministic",
        "projects on a random Gaussian sketch: the output is an approximation whose error "
        "depends on the sketch, with no distribution of its own to compare.",
    ),
    "pca_lowrank": Exclusion(
        "nondeterministic",
        "projects on a random Gaussian sketch: the output is an approximation whose error "
        "depends on the sketch, with no distribution of its own to compare.",
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


class Statistical(NamedTuple):
    """A random entry compared by distribution: ``support`` names the set every value must
    lie in (one of ``SUPPORTS``); ``inplace``: the entry's op writes its input
    (``x.exponential_()``), so the module calls it on a clone of ``x`` and the lowering sees
    the functional form (a pure function cannot write its input)."""

    support: str
    reason: str
    inplace: bool = False


SUPPORTS = {
    "real": "no NaN where torch has none (infinities allowed: float16 Cauchy tails reach them)",
    "nonnegative": "every value >= 0",
    "positive": "every value > 0",
    "binary": "every value 0 or 1",
    "trials": "integers >= 1 (the number of Bernoulli trials up to a success)",
    "bounds": "within [from, to], the sample's two arguments (inclusive: rounding to a low "
    "precision may reach `to`)",
    "integers": "integers in [low, high) (the sample's one or two int arguments: high, or low "
    "and high)",
    "categories": "indices into the last axis of the weights (the input) whose weight is > 0, "
    "distinct within a row when drawn without replacement",
    "seen": "at each position, one of the values torch drew there: the samples' dropout "
    "probabilities are 0, 0.5 or 1, so each value has probability >= 1/2 and torch's draws "
    "miss one with probability <= 2**-(draws - 1)",
}

_SAMPLER = "a sampler: its output is random by definition"
_LAYER = "samples train (training=True): a random mask"

STATISTICAL: dict[str, Statistical] = {
    # samplers (op_db's rand_like entry calls torch.randn_like, as its definition says)
    "bernoulli": Statistical("binary", f"{_SAMPLER} (Bernoulli, p tensor)."),
    "cauchy": Statistical("real", f"{_SAMPLER} (Cauchy, x.cauchy_).", inplace=True),
    "exponential": Statistical(
        "nonnegative", f"{_SAMPLER} (exponential, x.exponential_).", inplace=True
    ),
    "geometric": Statistical("trials", f"{_SAMPLER} (geometric, x.geometric_).", inplace=True),
    "log_normal": Statistical("positive", f"{_SAMPLER} (log-normal, x.log_normal_).", inplace=True),
    "multinomial": Statistical("categories", f"{_SAMPLER} (categorical indices)."),
    "normal": Statistical("real", f"{_SAMPLER} (normal, tensor mean and std)."),
    "normal[in_place]": Statistical("real", f"{_SAMPLER} (normal, x.normal_).", inplace=True),
    "normal[number_mean]": Statistical("real", f"{_SAMPLER} (normal, a number mean)."),
    "uniform": Statistical("bounds", f"{_SAMPLER} (uniform, x.uniform_).", inplace=True),
    "rand_like": Statistical("real", f"{_SAMPLER} (normal: op_db calls randn_like)."),
    "randn": Statistical("real", f"{_SAMPLER} (normal)."),
    "randn_like": Statistical("real", f"{_SAMPLER} (normal)."),
    "randint": Statistical("integers", f"{_SAMPLER} (uniform integers)."),
    "randint_like": Statistical("integers", f"{_SAMPLER} (uniform integers)."),
    # random layers in training
    "nn.functional.dropout": Statistical("seen", f"its {_LAYER}."),
    "nn.functional.dropout2d": Statistical("seen", f"its {_LAYER} per channel."),
    "nn.functional.dropout3d": Statistical("seen", f"its {_LAYER} per channel."),
    "nn.functional.alpha_dropout": Statistical("seen", f"its {_LAYER}."),
    "nn.functional.feature_alpha_dropout[with_train]": Statistical(
        "seen", f"its {_LAYER} per channel."
    ),
    "nn.functional.rrelu": Statistical(
        "real", "its samples pass training=True: each negative slope is drawn."
    ),
    "nn.functional.fractional_max_pool2d": Statistical(
        "real", "its pooling regions are drawn at random (no _random_samples given)."
    ),
    "nn.functional.fractional_max_pool3d": Statistical(
        "real", "its pooling regions are drawn at random (no _random_samples given)."
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

"""`Preprocess` checks its fields wherever one is made (a source's defaults, ONNX metadata, a
user's builder, ``attrs.evolve``): out-of-range values are one `PreprocessError` naming the
field, instead of non-finite embeddings or a backend traceback later."""

from __future__ import annotations

import math

import attrs
import pytest

from adapters._src.preprocess import IMAGENET_MEAN, MAX_SIDE, Preprocess, PreprocessError

#: field -> values it refuses
BAD = {
    "size": [(0, 224), (-3, 32), ("32", 32), (224,), (True, 3), (32.0, 32), (MAX_SIDE + 1, 8), 32],
    "channels": [0, -1, "3", True, 1.0],
    "mean": [(), ("0.5",), (math.nan,), (math.inf, 0, 0), (0.1, 0.2), 0.5],
    "std": [(0.0,), (0.2, 0.0, 0.2), (math.nan, 1, 1), (-1.0,), (), ("1",), (0.1, 0.2)],
    "crop_pct": [0, -0.5, math.nan, math.inf, "1", True],
    "interpolation": ["cubic", None],
    "crop_mode": ["middle", None],
    "origin": [5, None],
    "pipeline": ["opencv"],
}
CASES = [(field, value) for field, values in BAD.items() for value in values]


@pytest.mark.parametrize(("field", "value"), CASES, ids=[f"{f}={v!r}" for f, v in CASES])
def test_out_of_range_field_is_one_error_naming_it(field, value):
    kwargs = {"size": (32, 32), field: value}
    with pytest.raises(PreprocessError) as info:
        Preprocess(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: expected ")
    # attrs.evolve checks again: a valid record cannot be turned into an invalid one
    with pytest.raises(PreprocessError):
        attrs.evolve(Preprocess(size=(32, 32)), **{field: value})


def test_valid_values_and_lists_from_json():
    pre = Preprocess(size=[24, 20], channels=3, mean=[0.5], std=[0.25, 0.5, 1], crop_pct=0.875)
    assert pre.size == (24, 20) and pre.mean == (0.5,) and pre.std == (0.25, 0.5, 1)
    # a grey model may keep ImageNet's three statistics: the first is used
    grey = Preprocess(size=(8, 8), channels=1)
    assert grey.mean == IMAGENET_MEAN
    assert Preprocess(**grey.as_dict()) == grey

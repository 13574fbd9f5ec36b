"""`specs.register_source_tag`: a user's record loads from YAML, dumps back, and is refused
with one clear error when misused."""

from __future__ import annotations

import attrs
import pytest

import specs


@attrs.frozen
class ScaleSpec:
    factor: float
    transforms: tuple = ()


@attrs.frozen
class OtherSpec:
    factor: float


@pytest.fixture
def scale_tag():
    specs.register_source_tag("scale_test", ScaleSpec)
    yield "scale_test"
    specs.unregister_source_tag("scale_test")


def test_user_record_round_trips_through_yaml(scale_tag, tmp_path):
    spec = ScaleSpec(2.5, transforms=(specs.ClsToken(num_register_tokens=1),))
    path = tmp_path / "scale.yaml"
    specs.dump(spec, path)
    assert "source: scale_test" in path.read_text()
    assert specs.load(path) == spec
    assert specs.structure(specs.unstructure(spec)) == spec
    assert specs.source_of(spec) == scale_tag
    assert ScaleSpec not in specs.SOURCES.values()  # the built-in table stays as it is


def test_user_record_errors_name_the_field(scale_tag):
    with pytest.raises(specs.SpecError, match=r"factr: .*Did you mean 'factor'"):
        specs.loads("{source: scale_test, factr: 2.0}")
    with pytest.raises(specs.SpecError, match=r"transforms\[0\]: expected a transform name"):
        specs.loads("{source: scale_test, factor: 2.0, transforms: [bogus]}")


def test_unregistered_tag_lists_the_known_ones():
    with pytest.raises(specs.SpecError, match=r"source: expected a source name.*timm"):
        specs.loads("{source: scale_test, factor: 2.0}")
    with pytest.raises(specs.SpecError, match="expected a spec record"):
        specs.unstructure(ScaleSpec(1.0))


@pytest.mark.parametrize(
    ("tag", "record", "error", "match"),
    [
        ("timm", ScaleSpec, ValueError, "not a built-in tag"),
        ("Bad-Tag", ScaleSpec, ValueError, "lower case letters"),
        ("ok", int, TypeError, "must be an attrs class"),
        ("ok", ScaleSpec(1.0), TypeError, "must be an attrs class"),
    ],
)
def test_bad_registration(tag, record, error, match):
    with pytest.raises(error, match=match):
        specs.register_source_tag(tag, record)


def test_a_tag_names_one_record_and_a_record_has_one_tag(scale_tag):
    specs.register_source_tag(scale_tag, ScaleSpec)  # the same pair again: a no-op
    with pytest.raises(ValueError, match="already names ScaleSpec"):
        specs.register_source_tag(scale_tag, OtherSpec)
    with pytest.raises(ValueError, match="already has the tag 'scale_test'"):
        specs.register_source_tag("scale_again", ScaleSpec)
    with pytest.raises(ValueError, match="built-in tag"):
        specs.unregister_source_tag("timm")

"""${oc.env:VAR, default} interpolation, as OmegaConf reads it in eva's configs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specs import SpecError
from specs._src.interpolate import escape, resolve, resolve_string

ENV = {"FMA_I_NAME": "vit_small", "FMA_I_FLAG": "false", "FMA_I_INT": "12", "FMA_I_EMPTY": ""}

CASES = [
    ("${oc.env:FMA_I_NAME}", "vit_small"),
    ("${oc.env:FMA_I_NAME, other}", "vit_small"),
    ("prefix/${oc.env:FMA_I_NAME}/suffix", "prefix/vit_small/suffix"),
    ("${oc.env:FMA_I_NAME}-${oc.env:FMA_I_INT}", "vit_small-12"),
    # a whole-value interpolation is typed with YAML rules; inside a string it stays text
    ("${oc.env:FMA_I_FLAG}", False),
    ("${oc.env:FMA_I_INT}", 12),
    ("n=${oc.env:FMA_I_INT}", "n=12"),
    ("${oc.env:FMA_I_EMPTY, x}", ""),
    ("${oc.env:FMA_I_UNSET, 384}", 384),
    ("${oc.env:FMA_I_UNSET,0.5}", 0.5),
    ("${oc.env:FMA_I_UNSET, true}", True),
    ("${oc.env:FMA_I_UNSET, null}", None),
    ("${oc.env:FMA_I_UNSET, [0, 1]}", [0, 1]),
    ("${oc.env:FMA_I_UNSET, 'true'}", "true"),
    ("${oc.env:FMA_I_UNSET, 'a, b'}", "a, b"),
    ("${oc.env:FMA_I_UNSET, /data/x}", "/data/x"),
    # nested defaults, resolved only when needed
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_NAME, x}}", "vit_small"),
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_UNSET2, deep}}", "deep"),
    ("${oc.env:FMA_I_NAME, ${oc.env:FMA_I_UNSET2}}", "vit_small"),
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_UNSET2, ${oc.env:FMA_I_INT}}}", 12),
    # escapes and plain dollars
    ("\\${oc.env:FMA_I_NAME}", "${oc.env:FMA_I_NAME}"),
    ("\\\\${oc.env:FMA_I_NAME}", "\\vit_small"),
    ("costs $5 {each}", "costs $5 {each}"),
    ("C:\\path\\file", "C:\\path\\file"),
]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("FMA_I_UNSET", "FMA_I_UNSET2"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_resolve_string(text: str, expected: Any) -> None:
    value = resolve_string(text)
    assert value == expected
    assert type(value) is type(expected)


def test_resolve_walks_nested_data_and_keeps_keys() -> None:
    data = {"${oc.env:FMA_I_NAME}": ["${oc.env:FMA_I_INT}", {"a": "${oc.env:FMA_I_FLAG}"}], "n": 1}
    assert resolve(data) == {"${oc.env:FMA_I_NAME}": [12, {"a": False}], "n": 1}


ERRORS = [
    ("${oc.env:FMA_I_UNSET}", ["FMA_I_UNSET to be set", "export FMA_I_UNSET="]),
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_UNSET2}}", ["FMA_I_UNSET2 to be set"]),
    ("${oc.env:FMA_I_NAME", ["a closed interpolation"]),
    ("${oc.env:FMA_I_UNSET, 'open}", ["a closed interpolation"]),
    ("${oc.env:}", ["an environment variable name"]),
    ("${oc.env:A, b, c}", ["at most two arguments", "Quote a default"]),
    ("${oc.decode:1}", ["Only the 'oc.env' resolver", "not oc.decode"]),
    ("${other.node}", ["reference to the node 'other.node'"]),
    ("${oc.env:A, 'x' y}", ["quoted default followed by"]),
]


@pytest.mark.parametrize(("text", "fragments"), ERRORS)
def test_errors_name_the_field(text: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        resolve({"backbone": {"init_args": {"model_name": text}}})
    message = str(info.value)
    assert info.value.path == "backbone.init_args.model_name"
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.slow
@given(st.text("ab$\\{}:, '\"x") | st.text())
def test_escape_is_inverted_by_resolve(text: str) -> None:
    assert resolve_string(escape(text)) == text

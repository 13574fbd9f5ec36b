"""Interpolation resolved by OmegaConf, as in eva's configs, plus our YAML typing of whole values."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import specs
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
    # OmegaConf's oc.env hands back the text 'true'; typing it is the same as for an env var
    # set to 'true' (eva then types it against the field)
    ("${oc.env:FMA_I_UNSET, 'true'}", True),
    ("${oc.env:FMA_I_UNSET, 'a, b'}", "a, b"),
    ("${oc.env:FMA_I_UNSET, /data/x}", "/data/x"),
    # nested defaults (OmegaConf resolves a default even when the variable is set: see ERRORS)
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_NAME, x}}", "vit_small"),
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_UNSET2, deep}}", "deep"),
    ("${oc.env:FMA_I_UNSET, ${oc.env:FMA_I_UNSET2, ${oc.env:FMA_I_INT}}}", 12),
    # escapes and plain dollars
    ("\\${oc.env:FMA_I_NAME}", "${oc.env:FMA_I_NAME}"),
    ("\\\\${oc.env:FMA_I_NAME}", "\\vit_small"),
    ("costs $5 {each}", "costs $5 {each}"),
    ("C:\\path\\file", "C:\\path\\file"),
    # oc.decode types the text itself; its result is not typed again
    ("${oc.decode:${oc.env:FMA_I_INT}}", 12),
    ("${oc.decode:${oc.env:FMA_I_UNSET, '[2, 3]'}}", [2, 3]),
    ("${oc.decode:'\"12\"'}", "12"),
    ("${oc.decode:null}", None),
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
    # OmegaConf evaluates a default before calling oc.env, so an unset inner variable fails
    # even when the outer one is set (eva users get the same)
    ("${oc.env:FMA_I_NAME, ${oc.env:FMA_I_UNSET2}}", ["FMA_I_UNSET2 to be set"]),
    ("${oc.env:FMA_I_NAME", ["a closed interpolation", "Close every '${' with '}'"]),
    ("${oc.env:FMA_I_UNSET, 'open}", ["a closed interpolation"]),
    ("${oc.env:A, 'x' y}", ["a well-formed interpolation", "quote a default"]),
    ("${oc.env:}", ["an interpolation that resolves", "missing 1 required positional"]),
    ("${oc.env:A, b, c}", ["an interpolation that resolves", "quote a default that holds a comma"]),
    ("${oc.decode:1}", ["an interpolation that resolves", "`oc.decode` can only take strings"]),
    ("${other.node}", ["a reference to a node of this config", "'other.node' not found"]),
    ("${..missing}", ["a reference to a node of this config", "'..missing' not found"]),
    ("${no_such_resolver:1}", ["a known resolver", "no_such_resolver"]),
    ("${backbone.init_args.model_name}", ["an interpolation that resolves", "Recursive"]),
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


# eva's config forms: node references (absolute and relative) and oc.decode, as OmegaConf reads them
EVA = {
    "backbone": {
        "class_path": "eva.vision.models.wrappers.TimmModel",
        "init_args": {
            "model_name": "${oc.env:FMA_I_UNSET, vit_tiny_patch16_224}",
            "pretrained": "${oc.decode:${oc.env:FMA_I_FLAG}}",
            "out_indices": "${oc.decode:${oc.env:FMA_I_UNSET, '[2, 3]'}}",
            "checkpoint_path": "${oc.env:FMA_I_UNSET, /ckpt}/${.model_name}.pth",
            "model_kwargs": {"img_size": "${oc.env:FMA_I_UNSET, 32}", "name": "${..model_name}"},
        },
    }
}


def test_eva_node_references_and_decode() -> None:
    init_args = resolve(EVA)["backbone"]["init_args"]
    assert init_args == {
        "model_name": "vit_tiny_patch16_224",
        "pretrained": False,
        "out_indices": [2, 3],
        "checkpoint_path": "/ckpt/vit_tiny_patch16_224.pth",
        "model_kwargs": {"img_size": 32, "name": "vit_tiny_patch16_224"},
    }


def test_eva_config_with_references_loads_to_the_record() -> None:
    text = """
backbone:
  class_path: eva.vision.models.wrappers.TimmModel
  init_args:
    model_name: ${oc.env:FMA_I_UNSET, vit_tiny_patch16_224}
    pretrained: ${oc.decode:${oc.env:FMA_I_FLAG, true}}
    out_indices: ${oc.env:FMA_I_UNSET, '[2, 3]'}
    checkpoint_path: ${oc.env:FMA_I_UNSET, /ckpt}/${backbone.init_args.model_name}.pth
"""
    spec = specs.loads(text)
    assert spec == specs.TimmSpec(
        model_name="vit_tiny_patch16_224",
        pretrained=False,
        out_indices=(2, 3),
        checkpoint_path="/ckpt/vit_tiny_patch16_224.pth",
    )


def test_reference_to_a_section_is_resolved_and_typed() -> None:
    data = {"shared": {"n": "${oc.env:FMA_I_INT}", "s": "x"}, "a": {"copy": "${shared}"}}
    assert resolve(data)["a"]["copy"] == {"n": 12, "s": "x"}


def test_values_omegaconf_does_not_type_pass_through() -> None:
    when = datetime.date(2024, 1, 2)
    data = {"when": when, "t": (1, "${oc.env:FMA_I_INT}"), "m": "???"}
    assert resolve(data) == {"when": when, "t": [1, 12], "m": "???"}


def test_bad_key_is_reported_before_omegaconf() -> None:
    with pytest.raises(SpecError) as info:
        resolve({"a": {None: "${oc.env:FMA_I_INT}"}})
    assert info.value.location == ("a", None)
    assert "string keys" in str(info.value)


# ---------------------------------------------------------------------------------------------
# bounds: a few hundred bytes of interpolation must not expand without end
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _env_alias_bomb() -> tuple[str, dict[str, str]]:
    """A short spec whose one oc.env value is a YAML list of aliases that expand to 9**9."""
    lines = ["- &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for name, previous in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"- &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    text = "source: timm\nmodel_name: resnet18\nmodel_kwargs: {x: '${oc.env:FMA_BOMB}'}\n"
    return text, {"FMA_BOMB": "\n".join(lines)}


def _decode_bomb(levels: int = 24) -> tuple[str, dict[str, str]]:
    """Lists built by oc.decode, each holding the one before twice (2**levels values)."""
    lines = ["source: timm", "model_name: resnet18", "model_kwargs:", "  b0: 1"]
    for i in range(1, levels):
        lines.append(f"  b{i}: \"${{oc.decode:'[${{.b{i - 1}}},${{.b{i - 1}}}]'}}\"")
    return "\n".join(lines) + "\n", {}


def _string_chain_bomb(levels: int = 32) -> tuple[str, dict[str, str]]:
    """Strings, each the one before twice (8 * 2**levels characters)."""
    lines = ["source: timm", "model_name: resnet18", "model_kwargs:", "  a0: xxxxxxxx"]
    lines += [f"  a{i}: ${{.a{i - 1}}}${{.a{i - 1}}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n", {}


BOMBS = {
    "oc.env alias": _env_alias_bomb,
    "oc.decode": _decode_bomb,
    "string chain": _string_chain_bomb,
}

#: the bomb is loaded in a child with a CPU and memory limit: a regression is a killed child
#: (a failed test), not a hung or swapping test run
GUARDED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
import specs
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
try:
    specs.loads(sys.stdin.read(), name="bomb")
except specs.SpecError as err:
    print(json.dumps({"error": "SpecError", "path": err.path, "message": str(err)}))
except BaseException as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)[:300]}))
"""


@pytest.mark.parametrize("kind", list(BOMBS))
def test_interpolation_bomb_is_a_spec_error_under_limits(kind: str) -> None:
    text, env = BOMBS[kind]()
    assert len(text) < 1000  # the were 100, 961 and 736 bytes
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GUARDED)],
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] == "SpecError", result
    assert result["path"].startswith("model_kwargs."), result
    assert "Stopped resolving" in result["message"]


def test_references_within_bounds_resolve_once_each() -> None:
    """Twelve doublings (32 KiB) resolve: each node once, not 2**12 times."""
    from specs._src.evaluate import Evaluator

    data = {"a0": "xxxxxxxx", **{f"a{i}": f"${{a{i - 1}}}${{a{i - 1}}}" for i in range(1, 13)}}
    evaluator = Evaluator(data)
    assert evaluator.value()["a12"] == "x" * 8 * 2**12
    assert evaluator.parsed < 200  # the twelve interpolations, each parsed once


def test_deeply_nested_interpolation_is_a_spec_error() -> None:
    deep = "${oc.env:FMA_I_UNSET, " * 600 + "x" + "}" * 600
    with pytest.raises(SpecError, match="nests too deep") as info:
        resolve({"a": {"b": deep}})
    assert info.value.path == "a.b"
    decoded = "${oc.decode:'" + "[" * 600 + "]" * 600 + "'}"
    with pytest.raises(SpecError, match="nests too deep") as info:
        resolve({"a": decoded})
    assert info.value.path == "a"


def test_reference_chain_depth_is_bounded() -> None:
    from specs._src.evaluate import MAX_REFERENCE_DEPTH

    def chain(n: int) -> dict[str, str]:
        """a_n -> a_(n-1) -> ... -> a0, written (and so resolved) from a_n down."""
        return {**{f"a{i}": f"${{a{i - 1}}}" for i in range(n, 0, -1)}, "a0": "x"}

    assert resolve(chain(MAX_REFERENCE_DEPTH - 1))[f"a{MAX_REFERENCE_DEPTH - 1}"] == "x"
    with pytest.raises(SpecError, match=f"nest deeper than {MAX_REFERENCE_DEPTH} levels"):
        resolve(chain(MAX_REFERENCE_DEPTH + 5))


@pytest.mark.parametrize("name", ["oc.select", "oc.create", "oc.dict.keys"])
def test_resolvers_that_read_the_config_are_refused(name: str) -> None:
    with pytest.raises(SpecError, match="write a node reference") as info:
        resolve({"a": 1, "b": f"${{{name}:a}}"})
    assert info.value.path == "b"
